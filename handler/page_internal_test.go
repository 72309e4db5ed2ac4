package handler

import (
	"bytes"
	"testing"
	"time"
)

// TestPageFillsEveryPlaceholder: every {{...}} of the page's source is
// replaced (the golden files pin the result for two settings), and the
// values come from the handler's settings.
func TestPageFillsEveryPlaceholder(t *testing.T) {
	page := New(WithInterval(1500*time.Millisecond), WithFastDelay(250*time.Millisecond)).pageHTML
	if i := bytes.Index(page, []byte("{{")); i >= 0 {
		t.Errorf("the page keeps a placeholder: %q", page[i:min(len(page), i+40)])
	}
	for _, want := range []string{"every 1500 ms.", "100 events 250 ms apart", `data-count="100"`} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page does not say %q", want)
		}
	}
}
