package main

import "testing"

// One test per rule of SPEC section 3, named with its id; the scenario is in testdata/scenarios.

func TestRP1(t *testing.T) { runScenario(t, "reconpro.txt", "RP-1") }

func TestRP2(t *testing.T) { runScenario(t, "reconpro.txt", "RP-2") }

func TestRP3(t *testing.T) { runScenario(t, "reconpro.txt", "RP-3") }

func TestRP4(t *testing.T) { runScenario(t, "reconpro.txt", "RP-4") }

func TestRP5(t *testing.T) { runScenario(t, "reconpro.txt", "RP-5") }

func TestRP6(t *testing.T) { runScenario(t, "reconpro.txt", "RP-6") }

func TestRP7(t *testing.T) { runScenario(t, "reconpro.txt", "RP-7") }

func TestRP8(t *testing.T) { runScenario(t, "reconpro.txt", "RP-8") }

func TestRP9(t *testing.T) { runScenario(t, "reconpro.txt", "RP-9") }

func TestRP10(t *testing.T) { runScenario(t, "reconpro.txt", "RP-10") }

func TestRP11(t *testing.T) { runScenario(t, "reconpro.txt", "RP-11") }

func TestRP12(t *testing.T) { runScenario(t, "reconpro.txt", "RP-12") }

func TestTO1(t *testing.T) { runScenario(t, "trackops.txt", "TO-1") }

func TestTO2(t *testing.T) { runScenario(t, "trackops.txt", "TO-2") }

func TestTO3(t *testing.T) { runScenario(t, "trackops.txt", "TO-3") }

func TestTO4a(t *testing.T) { runScenario(t, "trackops.txt", "TO-4a") }

func TestTO4b(t *testing.T) { runScenario(t, "trackops.txt", "TO-4b") }

func TestTO4c(t *testing.T) { runScenario(t, "trackops.txt", "TO-4c") }

func TestTO4d(t *testing.T) { runScenario(t, "trackops.txt", "TO-4d") }

// TestTO4dChangeFeedTellsLostInvoices: the change feed (SPEC section 8) of a limited staff member
// unassigned from a case lists the invoices linked to it as lost, in one message for the event.
func TestTO4dChangeFeedTellsLostInvoices(t *testing.T) { runScenario(t, "trackops.txt", "TO-4d-feed") }

func TestTO4e(t *testing.T) { runScenario(t, "trackops.txt", "TO-4e") }

func TestTO4f(t *testing.T) { runScenario(t, "trackops.txt", "TO-4f") }

func TestTO5(t *testing.T) { runScenario(t, "trackops.txt", "TO-5") }

func TestTO6(t *testing.T) { runScenario(t, "trackops.txt", "TO-6") }

func TestTO7(t *testing.T) { runScenario(t, "trackops.txt", "TO-7") }

func TestTO8(t *testing.T) { runScenario(t, "trackops.txt", "TO-8") }

func TestPB1(t *testing.T) { runScenario(t, "probuild.txt", "PB-1") }

func TestPB2(t *testing.T) { runScenario(t, "probuild.txt", "PB-2") }

func TestPB3(t *testing.T) { runScenario(t, "probuild.txt", "PB-3") }

func TestPB4(t *testing.T) { runScenario(t, "probuild.txt", "PB-4") }

func TestPB5(t *testing.T) { runScenario(t, "probuild.txt", "PB-5") }

// TestPB2DryRunListsWorkersGrants: a dry run of a change to the worker role's defaults lists, for
// every worker and nobody else, the grants it would lose or gain and the records it would stop
// or start seeing; nothing is written.
func TestPB2DryRunListsWorkersGrants(t *testing.T) { runScenario(t, "probuild.txt", "PB-2-dry") }

// TestTO7DryRunSeatLimit: a dry run that would exceed a seat limit answers seat_limit_reached;
// one that fits takes no seat (the real command after it still fits).
func TestTO7DryRunSeatLimit(t *testing.T) { runScenario(t, "trackops.txt", "TO-7-dry") }
