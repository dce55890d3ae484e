package ingress

import "github.com/rsgate/rsgate/pool"

// PoolsFunc adapts a lookup function to Pools, for callers that keep their pools themselves:
//
//	ingress.New(cfg, table, ingress.PoolsFunc(func(name string) *pool.Pool { return mine[name] }), opts)
type PoolsFunc func(name string) *pool.Pool

// Get implements Pools.
func (f PoolsFunc) Get(name string) *pool.Pool { return f(name) }
