export { oracleAdapter } from './oracle-adapter.js';
