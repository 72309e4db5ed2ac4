package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printJSON writes rep as one indented JSON object (-json).
func printJSON(w io.Writer, rep Report) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep) //nolint:errcheck // stdout
}

// printReport writes one line per finding, and its fix on the next.
func printReport(w io.Writer, rep Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if rep.Method != "" {
		fmt.Fprintf(tw, "%s %s\n", rep.Method, rep.URL)
	} else {
		fmt.Fprintf(tw, "%s\n", rep.URL)
	}
	if rep.Compare != "" {
		fmt.Fprintf(tw, "compared with %s, read at the same moment\n", rep.Compare)
	}
	if rep.RedirectedFrom != "" {
		fmt.Fprintf(tw, "redirected from %s\n", rep.RedirectedFrom)
	}
	via := "proxy: " + rep.Proxy
	if len(rep.Software) > 0 {
		via += "; the responses show " + strings.Join(rep.Software, ", ")
	}
	fmt.Fprintln(tw, via)
	for _, f := range rep.Checks {
		mark := "ok"
		if !f.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, f.Name, f.Verdict, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(tw, "\t\tfix:\t%s\n", f.Fix)
		}
	}
	tw.Flush()
	if rep.OK {
		fmt.Fprintln(w, "streams reach this client live")
	} else {
		fmt.Fprintln(w, "the path breaks live streaming (see FAIL above)")
	}
}
