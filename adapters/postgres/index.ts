export { postgresAdapter } from './postgres-adapter.js';
