export { sqliteAdapter } from './sqlite-adapter.js';
