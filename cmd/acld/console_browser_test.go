package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// consoleScreenshots rewrites the console's screenshots in cmd/acld/console/screenshots (the
// README shows them); without it the browser tests take them into a temporary directory.
var consoleScreenshots = flag.Bool("console-screenshots", false, "write the console's screenshots into console/screenshots")

// chromiumPath finds a Chromium or Chrome to drive, or skips the test saying how to get one.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium to run the console's browser tests: apt-get install -y chromium (Debian), or put chromium on PATH")
	return ""
}

// browser starts a headless Chromium for the test and returns its context.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in a container has no user namespace for the sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(width, height),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil { // starts the browser; without a time-out, which would stop it
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	tctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	return tctx
}

// screenshotDir is where the browser tests put their screenshots.
func screenshotDir(t *testing.T) string {
	if *consoleScreenshots {
		return filepath.Join("console", "screenshots")
	}
	return t.TempDir()
}

func saveShot(t *testing.T, dir, name string, png []byte) {
	t.Helper()
	if len(png) < 1000 {
		t.Fatalf("screenshot %s: %d bytes", name, len(png))
	}
	// FullScreenshot below quality 100 is a JPEG, the others PNGs: the name must say which.
	if isJPEG := png[0] == 0xff && png[1] == 0xd8; isJPEG != strings.HasSuffix(name, ".jpg") {
		t.Fatalf("screenshot %s: JPEG %v", name, isJPEG)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInBrowser is the auditor's walk through the demo tenant in a real browser, after
// ann took case-1 from bob and gave it to sam: bob's page now shows no invoice; moving the moment
// to before the change (typing it in the moment picker) shows inv-1 among his invoices; the diff
// from that moment names inv-1 lost, with the record_unassigned that caused it; inv-1's page at
// that moment names bob among those who could view it. It takes the screenshots the README
// shows: the principal page, its timeline, the diff, and the principal page at phone width.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t, 1280, 900)
	m := startMain(t, func(c *Config) { c.Demo = true })
	base := "http://" + m.HTTPAddr()
	waitReady(t, base)
	before, unassigned, assigned := reassignCase1(t, m)
	dir := screenshotDir(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	shoot := func(name string, a chromedp.Action[[]byte]) {
		t.Helper()
		png, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		saveShot(t, dir, name, png)
	}

	// bob's page now: no invoice (the link from case-1 is gone).
	if err := m.proj.WaitFor(ctx, assigned); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/t/demo/p/bob"), chromedp.WaitVisible(chromedp.CSS("#visible-invoice"))); err != nil {
		t.Fatal(err)
	}
	if got := text(`ul[data-type="invoice"]`); strings.Contains(got, "inv-1") {
		t.Fatalf("bob's invoices after the change: %q", got)
	}

	// Move the moment with the picker, as a person would: type it, submit the form.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#at"), itoa(before)),
		chromedp.Submit(chromedp.CSS("#at")),
		chromedp.WaitVisible(chromedp.CSS(`strong[data-seq="`+itoa(before)+`"]`)),
	); err != nil {
		t.Fatalf("moving the moment to %d: %v", before, err)
	}
	if got := text(`ul[data-type="invoice"]`); !strings.Contains(got, "inv-1") {
		t.Fatalf("bob's invoices before the change: %q, want inv-1", got)
	}
	shoot("principal.jpg", chromedp.FullScreenshot(85))
	shoot("timeline.png", chromedp.Screenshot(chromedp.CSS("#timeline")))

	// The diff from that moment to now, by its link on the page.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href*="/diff?"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-type="invoice"]`)),
	); err != nil {
		t.Fatalf("opening the diff: %v", err)
	}
	if got := text(`tr[data-type="invoice"] td.lost`); !strings.Contains(got, "inv-1") {
		t.Fatalf("invoices lost: %q, want inv-1", got)
	}
	if got := text("#causes tbody"); !strings.Contains(got, "record_unassigned") || !strings.Contains(got, "UnassignRecord") || !strings.Contains(got, itoa(unassigned)) {
		t.Fatalf("causes: %q, want the record_unassigned at %d", got, unassigned)
	}
	shoot("diff.png", chromedp.FullScreenshot(100))

	// inv-1 as it stood before: bob among those who could view it.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-type="invoice"] td.lost a`)),
		chromedp.WaitVisible(chromedp.CSS(`ul[data-permission="invoice.view"]`)),
	); err != nil {
		t.Fatalf("opening inv-1: %v", err)
	}
	if got := text(`ul[data-permission="invoice.view"]`); !strings.Contains(got, "bob") {
		t.Fatalf("who could view inv-1 before the change: %q, want bob", got)
	}
	if got := text("strong[data-seq]"); got != itoa(before) {
		t.Fatalf("inv-1's page is as of %s, want %d", got, before)
	}
	shoot("record.png", chromedp.FullScreenshot(100))

	// Keyboard: the first Tab reaches the skip link, and following it lands on the content.
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	active, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if active != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link", active)
	}

	// Phone width: the page itself does not scroll sideways (wide tables scroll in their box).
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(base+"/ui/t/demo/p/bob?at="+itoa(before)),
		chromedp.WaitVisible(chromedp.CSS("#visible-invoice")),
	); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow > 1 {
		t.Errorf("at 390 px the page is %v px wider than the screen", overflow)
	}
	shoot("principal-phone.png", chromedp.CaptureScreenshot())
}
