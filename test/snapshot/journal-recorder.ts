/** A ResourceJournal that remembers what it was told, and checks that each resource is journaled before it exists. */
import { existsSync } from 'node:fs';
import type { ResourceJournal, SnapshotResource } from '../../src/snapshot/snapshot-provider.js';

export interface Recorded {
  journal: ResourceJournal;
  events: Array<{ what: 'created' | 'removed'; resource: SnapshotResource; existed: boolean }>;
  /** Journaled as created and not yet as removed. */
  open(): SnapshotResource[];
}

/** `exists` says whether a resource is there; for paths on this machine the default asks the filesystem. */
export function recordJournal(exists: (r: SnapshotResource) => boolean = (r) => existsSync(r.path)): Recorded {
  const events: Recorded['events'] = [];
  return {
    events,
    journal: {
      created: (resource) => events.push({ what: 'created', resource, existed: exists(resource) }),
      removed: (resource) => events.push({ what: 'removed', resource, existed: exists(resource) }),
    },
    open() {
      const live = new Map<string, SnapshotResource>();
      for (const e of events) {
        if (e.what === 'created') live.set(e.resource.path, e.resource);
        else live.delete(e.resource.path);
      }
      return [...live.values()];
    },
  };
}
