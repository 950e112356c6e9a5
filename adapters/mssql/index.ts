export { mssqlAdapter } from './mssql-adapter.js';
