/** @module A console client for HTTP tests: logs in, keeps the cookie, reads the CSRF token. */

/** A signed-in (or not) console client on `base`. */
export type ConsoleClient = {
  cookie: string | null;
  /** The raw Set-Cookie of the login, to check its attributes. */
  setCookie: string | null;
  get(path: string): Promise<Response>;
  post(path: string, fields: Record<string, string>): Promise<Response>;
  /** The CSRF token of the signed-in session, read from a page's hidden field. */
  csrf(): Promise<string>;
};

/** Logs in with `token` (a wrong one leaves the client signed out). */
export async function consoleLogin(base: string, token: string): Promise<ConsoleClient> {
  const client: ConsoleClient = {
    cookie: null,
    setCookie: null,
    get(path) {
      return fetch(`${base}${path}`, {
        redirect: "manual",
        headers: client.cookie ? { cookie: client.cookie } : {},
      });
    },
    post(path, fields) {
      return fetch(`${base}${path}`, {
        method: "POST",
        redirect: "manual",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          ...(client.cookie ? { cookie: client.cookie } : {}),
        },
        body: new URLSearchParams(fields),
      });
    },
    async csrf() {
      const text = await (await client.get("/console")).text();
      const match = /name="csrf" value="([^"]+)"/.exec(text);
      if (!match) throw new Error(`No CSRF field on the overview: ${text.slice(0, 300)}`);
      return match[1];
    },
  };
  const response = await client.post("/console/login", { token });
  await response.body?.cancel();
  const set = response.headers.get("set-cookie");
  if (response.status === 303 && set) {
    client.setCookie = set;
    client.cookie = set.split(";")[0];
  }
  return client;
}
