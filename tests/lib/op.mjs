// op.mjs - the tests' OpenID Provider is the shipped one (tools/op/op.mjs, also used by
// the demo); this re-export keeps the tests' imports where they were.
export * from '../../tools/op/op.mjs';
