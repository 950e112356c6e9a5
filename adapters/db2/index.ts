export { db2Adapter } from './db2-adapter.js';
