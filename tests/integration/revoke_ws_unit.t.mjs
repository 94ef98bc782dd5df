#!/usr/bin/env node
// revoke_ws_unit.t.mjs - revoke_ws.t.mjs in the shipped systemd unit's setting: started as
// root under the unit's CapabilityBoundingSet, "user" set, every thread of both processes
// checked, WebSockets through nginx reset within 10 ms of `edgegatectl revoke` and of a
// back-channel logout returning. See revoke_ws.t.mjs.
process.env.EG_AS_UNIT = '1';
await import('./revoke_ws.t.mjs');
