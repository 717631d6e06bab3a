/**
 * Imported first by the benches of the real node: the service they start is the single executable users run unless
 * PGW_TEST_SERVICE says otherwise. A module of its own because test/support/runtime.ts reads the variable when it
 * is imported, before any statement of the importing file runs.
 */
process.env.PGW_TEST_SERVICE ??= "exe";
