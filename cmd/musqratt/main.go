// Command musqratt is the MusQraTT MQTT-SN broker and its command-line clients.
//
//	musqratt                  serve on UDP port 1883 with the built-in configuration
//	musqratt serve [flags]    the same, with a configuration file and overrides
//	musqratt pub|sub ...      publish or subscribe, as an MQTT-SN client
//	musqratt stats            print a running broker's $SYS statistics
//	musqratt bench ...        measure a broker's latency and throughput
//	musqratt version
//	musqratt help
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise it
// comes from the module's build information.
var version string

// Subcommand runs one musqratt subcommand with its arguments (the subcommand's name
// removed) and returns the process exit code: 0 success, 1 failure, 2 usage error.
// It must return when ctx is cancelled (SIGINT or SIGTERM).
type Subcommand = func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// subcommands maps a name to its Subcommand. Each subcommand registers itself from its
// own file:
//
//	func init() { subcommands["pub"] = runPub }
var subcommands = map[string]Subcommand{}

// summaries are the one-line descriptions in the usage text, for the subcommands
// registered.
var summaries = map[string]string{
	"serve": "run the broker (the default with no command)",
	"pub":   "publish a message as an MQTT-SN client",
	"sub":   "subscribe and print the messages received",
	"bench": "measure a broker's throughput and latency",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process the default way.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return subcommands["serve"](ctx, nil, stdout, stderr)
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if f, ok := subcommands[args[1]]; ok {
				return f(ctx, []string{"-help"}, stdout, stderr)
			}
		}
		usage(stdout)
		return 0
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "musqratt", versionString(), runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
		return 0
	}
	if strings.HasPrefix(name, "-") {
		// Flags with no command are the server's: "musqratt -c musqratt.conf".
		return subcommands["serve"](ctx, args, stdout, stderr)
	}
	if f, ok := subcommands[name]; ok {
		return f(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "musqratt: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `MusQraTT is an MQTT-SN v1.2 broker.

Usage:
  musqratt [command] [flags]

With no command, musqratt serves MQTT-SN on UDP port 1883 (IPv6 and IPv4) with the
built-in configuration.

Commands:
`)
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, summaries[n])
	}
	fmt.Fprintf(w, "  %-8s %s\n", "version", "print the version")
	fmt.Fprintf(w, "  %-8s %s\n", "help", "print this help, or a command's: musqratt help COMMAND")
	fmt.Fprint(w, `
Run "musqratt COMMAND -h" for a command's flags.
`)
}

// versionString is the build's version: set by -ldflags, else the module version, else
// "dev", with the VCS revision when the build recorded one.
func versionString() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if v == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && !strings.Contains(v, rev) {
			v += "+" + rev + dirty
		}
	}
	return v
}
