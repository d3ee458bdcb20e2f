// Package aggregatestest makes random command histories for tests of every package: Random
// draws commands of every kind over small pools of principals and records, from the tenant's
// current state, so that a history meets the same ids again and again.
package aggregatestest
