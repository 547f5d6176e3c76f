/** @module Keeps the providers' calendars changing: creates, updates, deletes, recurring series. */
import { sleep } from "../../testkit/wait.ts";
import type { ChaosConnection } from "./environment.ts";
import type { Prng } from "./prng.ts";
import type { ChaosProvider } from "./providers.ts";
import type { ProviderKind } from "../drill/evidence.ts";

/** What the mutator can do to a calendar. */
export type Change =
  | "create"
  | "update"
  | "delete"
  | "series"
  | "edit_instance"
  | "cancel_instance";

const WEIGHTS: Record<Change, number> = {
  create: 35,
  update: 30,
  delete: 20,
  series: 5,
  edit_instance: 5,
  cancel_instance: 5,
};

/** Counts of changes made, by kind. */
export type ChangeCounts = Record<Change, number>;

/** Changes random calendars every 60-180 ms until `signal` aborts; resolves to the counts. */
export async function runMutator(
  options: {
    prng: Prng;
    connections: readonly ChaosConnection[];
    providers: ReadonlyMap<ProviderKind, ChaosProvider>;
    signal: AbortSignal;
  },
): Promise<ChangeCounts> {
  const { prng } = options;
  const counts: ChangeCounts = {
    create: 0,
    update: 0,
    delete: 0,
    series: 0,
    edit_instance: 0,
    cancel_instance: 0,
  };
  // Instances of the series created here, per calendar: edits and cancels pick among them.
  const instances = new Map<string, string[]>();
  let serial = 0;
  while (!options.signal.aborted) {
    const c = prng.pick(options.connections);
    const provider = options.providers.get(c.kind)!;
    const change = prng.weighted(WEIGHTS);
    const title = `Change ${++serial}`;
    const live = provider.liveIds(c.calendar);
    const own = (instances.get(c.calendar) ?? []).filter((id) => live.includes(id));
    switch (change) {
      case "create":
        provider.createEvent(c.calendar, title);
        counts.create++;
        break;
      case "update":
      case "delete": {
        if (live.length === 0) break;
        const id = prng.pick(live);
        if (change === "update") provider.updateEvent(c.calendar, id, title);
        else provider.deleteEvent(c.calendar, id);
        counts[change]++;
        break;
      }
      case "series": {
        const ids = provider.createSeries(c.calendar, `Series ${serial}`, prng.int(3, 5));
        instances.set(c.calendar, [...own, ...ids]);
        counts.series++;
        break;
      }
      case "edit_instance":
      case "cancel_instance": {
        if (own.length === 0) break;
        const id = prng.pick(own);
        if (change === "edit_instance") provider.editInstance(c.calendar, id, `${title} (moved)`);
        else provider.cancelInstance(c.calendar, id);
        counts[change]++;
        break;
      }
    }
    await sleep(prng.int(60, 180));
  }
  return counts;
}
