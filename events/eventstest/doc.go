// Package eventstest starts a real embedded NATS server with JetStream and the event store on
// it, for tests of every package: in process (no socket), in t.TempDir(), with the product's
// defaults but a 1 s fsync interval (see testSync), shut down by t.Cleanup before the directory is
// removed. Restart stops the server and starts it again on the same directory, for durability
// tests; it replaces Conn and Store. WaitFor polls a condition with a deadline, instead of
// sleeping.
package eventstest
