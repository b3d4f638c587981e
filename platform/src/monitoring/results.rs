//! Stored results: the batched writer, the queries behind uptime,
//! sparklines and charts, and the rollup/retention reconciler.
