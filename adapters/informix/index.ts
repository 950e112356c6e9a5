export { informixAdapter } from './informix-adapter.js';
