export { mariadbAdapter } from './mariadb-adapter.js';
