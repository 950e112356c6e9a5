/**
 * The commented starter config that `ebr init` writes: the embedded SQLite example, with the names of
 * every registered adapter (each has a commented example in config/<adapter>.yaml).
 */
export const starterConfig = (adapters: string[]): string => `# ebr configuration. Paths are relative to this file. Secrets: use \${ENV_VAR} references.
#
# The catalog records every backup, its phases, block window, discovered spaces and digests.
catalog: ./var/catalog.db

instances:
  # One entry per database server. Commands take --instance NAME (optional when there is only one).
  shop:
    adapter: sqlite                 # ${adapters.join(' | ')} (config/<adapter>.yaml: each one's keys)
    sqlite:
      main: ./data/shop.db          # the critical space "main"
      attach:                       # each attached database is a space of its own
        audit: ./data/audit.db
      busyTimeoutMs: 5000           # how long the block waits for a running writer
    snapshot:
      provider: copy                # copy | reflink (btrfs, XFS reflink=1)
      # staging: ./var/staging      # where copy/reflink put the frozen files
    target:
      type: tar                     # tar: one tar file per space | dir: plain files
      path: ./var/backups
    maxBlockMs: 10000               # the database is unblocked and the backup fails past this
    # schedule: "0 2 * * *"         # cron expression for \`ebr daemon\`
    # retention: { full: 7 }

  # another-server:
  #   adapter: <one of the above>
  #   <adapter>: { … }              # its connection keys; passwords as \${ENV} references
  #   snapshot: { provider: btrfs }
  #   target: { type: tar, path: /backup/ebr }
`;
