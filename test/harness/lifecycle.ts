// A stand-in for Azure Storage lifecycle management: applies a management policy JSON (the shape
// `az storage account management-policy create --policy @file` takes) to the blobs of an Azurite container, as the
// service's daily run would, on a clock that can be moved forward.
//
// What it plays, from the Azure Storage lifecycle management documentation:
//  - a rule applies to a blob when the rule is enabled, the blob's type is in `filters.blobTypes` and
//    `<container>/<blob name>` starts with one of `filters.prefixMatch` (case-sensitive; every prefix starts with the
//    container name). `blobIndexMatch` is refused (Azurite has no blob index tags, and a cw SAS cannot set them).
//  - baseBlob actions: `tierToCool`, `tierToCold`, `tierToArchive`, `delete`, each with conditions
//    `daysAfterModificationGreaterThan` / `daysAfterCreationGreaterThan`, and for `tierToArchive` also
//    `daysAfterLastTierChangeGreaterThan` (only together with daysAfterModificationGreaterThan, as the service
//    requires). All conditions of an action must hold.
//  - when several actions (of one or several rules) apply to a blob, the cheapest wins: delete, then tierToArchive,
//    then tierToCold, then tierToCool. Tier actions only move a blob to a cooler tier; lifecycle never rehydrates a
//    blob out of Archive, and moving a blob to the tier it is in is no action.
//  - `version` and `snapshot` actions are validated but not applied: Azurite has neither blob versions nor the
//    versioning they depend on.
// Time: Azurite stamps blobs with the real clock. The simulation starts at "now" (offset 0) and `advance(days)` moves
// its clock forward; creation and modification times are Azurite's, and so is the tier change time until the
// simulation (a lifecycle action, or a person's `setTier` through it) changes the tier, which it records on its own
// clock. A rehydration (Archive → Hot/Cool) takes effect at once in Azurite; in Azure it takes hours.
import { ContainerClient } from '@azure/storage-blob';

export type Tier = 'Hot' | 'Cool' | 'Cold' | 'Archive';
const TIER_RANK: Record<Tier, number> = { Hot: 0, Cool: 1, Cold: 2, Archive: 3 };
const DAY_MS = 86_400_000;

type Conditions = {
  daysAfterModificationGreaterThan?: number;
  daysAfterCreationGreaterThan?: number;
  daysAfterLastTierChangeGreaterThan?: number;
};
type BaseAction = 'delete' | 'tierToArchive' | 'tierToCold' | 'tierToCool';
/** Cheapest first: the order in which the service prefers actions that apply to one blob. */
const PRECEDENCE: BaseAction[] = ['delete', 'tierToArchive', 'tierToCold', 'tierToCool'];

export interface LifecycleRule {
  name: string;
  enabled: boolean;
  prefixes: string[];
  blobTypes: string[];
  baseBlob: Partial<Record<BaseAction, Conditions>>;
}

export interface BlobState {
  name: string;
  blobType: string;
  tier: Tier;
  createdOn: Date;
  lastModified: Date;
  /** The last explicit tier change, when there was one. */
  tierChangedOn?: Date;
}

export interface Decision {
  rule: string;
  action: BaseAction;
}

const fail = (where: string, message: string): never => { throw new Error(`lifecycle policy: ${where}: ${message}`); };

function only(obj: unknown, where: string, allowed: string[]): Record<string, unknown> {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) fail(where, 'must be an object');
  for (const key of Object.keys(obj as object)) if (!allowed.includes(key)) fail(where, `'${key}' is not modelled by this stand-in (known: ${allowed.join(', ')})`);
  return obj as Record<string, unknown>;
}

function days(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) fail(where, `must be a whole number of days ≥ 0, got ${JSON.stringify(value)}`);
  return value as number;
}

/** Reads a management policy strictly: anything this stand-in does not play is refused, never ignored. */
export function parsePolicy(json: unknown): LifecycleRule[] {
  const root = only(json, 'policy', ['rules']);
  if (!Array.isArray(root.rules) || root.rules.length === 0) fail('rules', 'must be a non-empty array');
  return (root.rules as unknown[]).map((raw, i) => {
    const r = only(raw, `rules[${i}]`, ['enabled', 'name', 'type', 'definition']);
    const where = `rule ${String(r.name ?? i)}`;
    if (r.type !== 'Lifecycle') fail(where, `type must be Lifecycle, got ${JSON.stringify(r.type)}`);
    if (typeof r.enabled !== 'boolean') fail(where, 'enabled must be true or false');
    const def = only(r.definition, `${where}.definition`, ['filters', 'actions']);
    const filters = only(def.filters, `${where}.filters`, ['blobTypes', 'prefixMatch']);
    const blobTypes = filters.blobTypes as string[];
    if (!Array.isArray(blobTypes) || blobTypes.length === 0) fail(`${where}.filters.blobTypes`, 'required');
    const prefixes = (filters.prefixMatch ?? []) as string[];
    if (!Array.isArray(prefixes) || prefixes.length > 10) fail(`${where}.filters.prefixMatch`, 'up to 10 prefixes');
    for (const p of prefixes) if (typeof p !== 'string' || !/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9](\/|$)/.test(p)) fail(`${where}.filters.prefixMatch`, `'${p}' must start with a container name`);
    const actions = only(def.actions, `${where}.actions`, ['baseBlob', 'version', 'snapshot']);
    const baseBlob: LifecycleRule['baseBlob'] = {};
    if (actions.baseBlob !== undefined) {
      const base = only(actions.baseBlob, `${where}.baseBlob`, PRECEDENCE);
      for (const [action, cond] of Object.entries(base)) {
        const w = `${where}.baseBlob.${action}`;
        const allowed = action === 'tierToArchive'
          ? ['daysAfterModificationGreaterThan', 'daysAfterCreationGreaterThan', 'daysAfterLastTierChangeGreaterThan']
          : ['daysAfterModificationGreaterThan', 'daysAfterCreationGreaterThan'];
        const c = only(cond, w, allowed);
        if (Object.keys(c).length === 0) fail(w, 'needs a condition');
        if (c.daysAfterLastTierChangeGreaterThan !== undefined && c.daysAfterModificationGreaterThan === undefined) {
          fail(w, 'daysAfterLastTierChangeGreaterThan goes only with daysAfterModificationGreaterThan');
        }
        const parsed: Conditions = {};
        for (const [k, v] of Object.entries(c)) parsed[k as keyof Conditions] = days(v, `${w}.${k}`);
        baseBlob[action as BaseAction] = parsed;
      }
    }
    for (const group of ['version', 'snapshot'] as const) {
      if (actions[group] === undefined) continue;
      for (const [action, cond] of Object.entries(only(actions[group], `${where}.${group}`, ['delete', 'tierToCool', 'tierToCold', 'tierToArchive']))) {
        for (const [k, v] of Object.entries(only(cond, `${where}.${group}.${action}`, ['daysAfterCreationGreaterThan']))) days(v, `${where}.${group}.${action}.${k}`);
      }
    }
    return { name: String(r.name), enabled: r.enabled as boolean, prefixes, blobTypes, baseBlob };
  });
}

/** The action the service takes on `blob` of `container` at `now`, or undefined. */
export function decide(rules: LifecycleRule[], container: string, blob: BlobState, now: Date): Decision | undefined {
  const path = `${container}/${blob.name}`;
  const age = (t: Date | undefined) => (t ? (now.getTime() - t.getTime()) / DAY_MS : Infinity);
  const holds = (c: Conditions) =>
    (c.daysAfterModificationGreaterThan === undefined || age(blob.lastModified) > c.daysAfterModificationGreaterThan) &&
    (c.daysAfterCreationGreaterThan === undefined || age(blob.createdOn) > c.daysAfterCreationGreaterThan) &&
    // A blob whose tier was never changed has no last tier change to wait for.
    (c.daysAfterLastTierChangeGreaterThan === undefined || age(blob.tierChangedOn) > c.daysAfterLastTierChangeGreaterThan);
  const target: Record<Exclude<BaseAction, 'delete'>, Tier> = { tierToArchive: 'Archive', tierToCold: 'Cold', tierToCool: 'Cool' };
  let best: Decision | undefined;
  for (const rule of rules) {
    if (!rule.enabled || !rule.blobTypes.includes(blob.blobType)) continue;
    if (rule.prefixes.length > 0 && !rule.prefixes.some((p) => path.startsWith(p))) continue;
    for (const action of PRECEDENCE) {
      const cond = rule.baseBlob[action];
      if (!cond || !holds(cond)) continue;
      if (action !== 'delete' && TIER_RANK[target[action]] <= TIER_RANK[blob.tier]) continue;
      if (!best || PRECEDENCE.indexOf(action) < PRECEDENCE.indexOf(best.action)) best = { rule: rule.name, action };
      break;
    }
  }
  return best;
}

export interface Applied extends Decision {
  blob: string;
  from: Tier;
  day: number;
}

/** The lifecycle service over one Azurite container (account-key client), on a clock that moves forward. */
export class LifecycleSimulator {
  readonly rules: LifecycleRule[];
  private offsetMs = 0;
  private readonly tierChanges = new Map<string, Date>();
  readonly history: Applied[] = [];

  constructor(private readonly container: ContainerClient, policy: unknown, private readonly start = new Date()) {
    this.rules = parsePolicy(policy);
  }

  now(): Date { return new Date(Date.now() + this.offsetMs); }
  /** Whole days since the simulation started. */
  day(): number { return Math.floor((this.now().getTime() - this.start.getTime()) / DAY_MS); }
  advance(days: number): void { this.offsetMs += days * DAY_MS; }

  async blobs(): Promise<BlobState[]> {
    const out: BlobState[] = [];
    for await (const b of this.container.listBlobsFlat()) {
      const p = b.properties;
      out.push({
        name: b.name,
        blobType: p.blobType === 'BlockBlob' ? 'blockBlob' : p.blobType === 'AppendBlob' ? 'appendBlob' : 'pageBlob',
        tier: (p.accessTier as Tier | undefined) ?? 'Hot',
        createdOn: p.createdOn ?? p.lastModified,
        lastModified: p.lastModified,
        tierChangedOn: this.tierChanges.get(b.name) ?? (p.accessTierInferred ? undefined : p.accessTierChangedOn),
      });
    }
    return out;
  }

  /** A person (or a restore procedure) sets a blob's tier, e.g. `az storage blob set-tier --tier Hot`. */
  async setTier(name: string, tier: Tier): Promise<void> {
    await this.container.getBlobClient(name).setAccessTier(tier);
    this.tierChanges.set(name, this.now());
  }

  /** One daily run of the policy over every blob of the container; returns what it did. */
  async run(): Promise<Applied[]> {
    const now = this.now();
    const done: Applied[] = [];
    for (const blob of await this.blobs()) {
      const d = decide(this.rules, this.container.containerName, blob, now);
      if (!d) continue;
      if (d.action === 'delete') {
        await this.container.deleteBlob(blob.name);
        this.tierChanges.delete(blob.name);
      } else {
        const tier: Tier = d.action === 'tierToArchive' ? 'Archive' : d.action === 'tierToCold' ? 'Cold' : 'Cool';
        await this.container.getBlobClient(blob.name).setAccessTier(tier);
        this.tierChanges.set(blob.name, now);
      }
      done.push({ ...d, blob: blob.name, from: blob.tier, day: this.day() });
    }
    this.history.push(...done);
    return done;
  }
}
