/** @module The providers calsync has adapters for: the one word every layer shares. */

/** A provider kind calsync has an adapter for. */
export type ProviderKind = "google" | "microsoft";
