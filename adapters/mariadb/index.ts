export { mariadbAdapter } from './mariadb-adapter.js';
export { syncInstanceBinlogs } from './mariadb-binlogs.js';
