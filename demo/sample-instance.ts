/** The demo's sample SQLite instance: a shop (main) with two attached databases, a few thousand rows each. */
import path from 'node:path';
import Database from 'better-sqlite3';

export interface SampleFiles {
  main: string;
  audit: string;
  inventory: string;
}

export function createSampleInstance(dataDir: string): SampleFiles {
  const files = { main: path.join(dataDir, 'shop.db'), audit: path.join(dataDir, 'audit.db'), inventory: path.join(dataDir, 'inventory.db') };
  const db = new Database(files.main);
  db.pragma('journal_mode = WAL');
  db.exec(`ATTACH '${files.audit}' AS audit; ATTACH '${files.inventory}' AS inventory;`);
  db.pragma('audit.journal_mode = WAL');
  db.pragma('inventory.journal_mode = WAL');
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total_cents INTEGER NOT NULL);
    CREATE TABLE audit.events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, what TEXT NOT NULL);
    CREATE TABLE inventory.items (sku TEXT PRIMARY KEY, title TEXT NOT NULL, stock INTEGER NOT NULL);
  `);
  const fill = db.transaction(() => {
    const c = db.prepare('INSERT INTO customers (id, name, email) VALUES (?, ?, ?)');
    for (let i = 1; i <= 2000; i++) c.run(i, `customer ${i}`, `c${i}@example.com`);
    const o = db.prepare('INSERT INTO orders (customer_id, total_cents) VALUES (?, ?)');
    for (let i = 1; i <= 6000; i++) o.run(1 + (i % 2000), 100 + ((i * 7919) % 50000));
    const e = db.prepare('INSERT INTO audit.events (at, what) VALUES (?, ?)');
    for (let i = 1; i <= 3000; i++) e.run(new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(), `order ${i} placed`);
    const it = db.prepare('INSERT INTO inventory.items (sku, title, stock) VALUES (?, ?, ?)');
    for (let i = 1; i <= 1500; i++) it.run(`SKU-${String(i).padStart(5, '0')}`, `item ${i} ${'x'.repeat(i % 40)}`, (i * 31) % 500);
  });
  fill();
  db.close();
  return files;
}

/** A fingerprint of the inventory: row count and a checksum of every row, to prove the restore brought it back. */
export function inventoryFingerprint(file: string): { rows: number; stock: number; checksum: string } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const r = db.prepare("SELECT count(*) AS rows, coalesce(sum(stock), 0) AS stock, coalesce(sum(length(title) * stock), 0) AS checksum FROM items").get() as { rows: number; stock: number; checksum: number };
    return { rows: r.rows, stock: r.stock, checksum: String(r.checksum) };
  } finally {
    db.close();
  }
}

/** What integrity_check says about a database (or the error opening it gives). */
export function integrityOf(file: string): string {
  try {
    const db = new Database(file, { fileMustExist: true });
    try {
      return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).slice(0, 2).join('; ');
    } finally {
      db.close();
    }
  } catch (err) {
    return (err as Error).message;
  }
}
