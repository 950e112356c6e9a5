// The Oracle and SQL Server adapters describe the small part of these drivers they use in their own
// types (OracleDriver, MssqlDriver), which their stand-ins implement too; the packages ship no types.
declare module 'oracledb';
declare module 'mssql';
