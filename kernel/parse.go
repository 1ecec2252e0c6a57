package kernel

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ConfigError is a configuration file error: the file, the line (0 for an error about
// the file as a whole) and what is wrong, with the fix where one is known.
type ConfigError struct {
	File string
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// ParseConfig reads a configuration file: one setting per line, "key value...",
// mosquitto style; "#" starts a comment (at the start of a line or after blank space);
// blank lines are ignored. Keys not in the file keep their defaults (an empty file
// yields the same as the embedded default.conf). listen, broadcast and topic may
// repeat; the first listen or broadcast line replaces the default list. filename is
// used in error messages only. See docs/config.md for every key.
func ParseConfig(filename string, r io.Reader) (Config, error) {
	p := parser{file: filename, cfg: builtin(), seen: make(map[string]int), topicLine: make(map[uint16]int)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return Config{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return Config{}, &ConfigError{File: filename, Line: p.line + 1, Msg: err.Error()}
	}
	if err := p.cfg.Broker.Validate(); err != nil {
		return Config{}, &ConfigError{File: filename, Msg: err.Error()}
	}
	if err := p.cfg.Bridge.Validate(); err != nil {
		line := p.seen["bridge"]
		return Config{}, &ConfigError{File: filename, Line: line, Msg: err.Error()}
	}
	return p.cfg, nil
}

type parser struct {
	file      string
	line      int
	cfg       Config
	current   string         // key of the line being parsed
	seen      map[string]int // key → line it was first set on
	topicLine map[uint16]int // pre-defined topic id → line

	listenSet, broadcastSet bool
}

func (p *parser) errorf(format string, args ...any) error {
	return &ConfigError{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// stripComment removes a comment: "#" at the start or after blank space.
func stripComment(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
			return s[:i]
		}
	}
	return s
}

func (p *parser) parseLine(text string) error {
	text = strings.TrimSpace(stripComment(text))
	if text == "" {
		return nil
	}
	fields := strings.Fields(text)
	name, args := fields[0], fields[1:]
	p.current = name
	k := lookupKey(name)
	if k == nil {
		return p.errorf("%s", unknownKeyMessage(name))
	}
	if !k.repeat {
		if prev, ok := p.seen[name]; ok {
			return p.errorf("%s is already set on line %d; remove one of them", name, prev)
		}
		p.seen[name] = p.line
	}
	if len(args) < k.minArgs {
		return p.errorf("%s needs a value, e.g. %q", name, k.example)
	}
	if k.maxArgs >= 0 && len(args) > k.maxArgs {
		return p.errorf("%s takes %s, got %d (%s); e.g. %q", name, plural(k.maxArgs, "value"), len(args), strings.Join(args, " "), k.example)
	}
	// A value that takes the rest of the line (a topic name) keeps its inner spaces.
	rest := strings.TrimSpace(text[len(name):])
	return k.set(p, args, rest)
}

func plural(n int, what string) string {
	if n == 1 {
		return "one " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// foreignKeys are keys from other brokers' files (mosquitto, the Paho MQTT-SN gateway)
// with what to write here instead.
var foreignKeys = map[string]string{
	"port":                  `use "listen [::]:PORT"`,
	"listener":              `use "listen ADDRESS:PORT", e.g. "listen [::]:1883"`,
	"bind_address":          `use "listen ADDRESS:PORT"`,
	"gatewayid":             `did you mean "gateway_id"?`,
	"max_connections":       `did you mean "max_clients"?`,
	"max_queued_messages":   `did you mean "max_queued_per_client"?`,
	"max_inflight_messages": `did you mean "inflight_window"?`,
	"message_size_limit":    `did you mean "max_payload"?`,
	"keepalive":             `keep-alive is the client's choice (CONNECT Duration); see retry_interval for the broker's own timer`,
	"persistence":           `did you mean "state_file"?`,
	"persistence_file":      `did you mean "state_file"?`,
	"acl_file":              `access rules are "allow" and "deny" lines in this file`,
	"log_dest":              `logs go to standard error; see log_format`,
	"log_type":              `did you mean "log_level"?`,
}

// unknownKeyMessage names the unknown key and the likeliest fix.
func unknownKeyMessage(name string) string {
	msg := fmt.Sprintf("unknown key %q", name)
	if hint, ok := foreignKeys[strings.ToLower(name)]; ok {
		return msg + "; " + hint
	}
	best, bestD := "", 1<<30
	for _, k := range keys {
		if d := editDistance(strings.ToLower(name), k.name); d < bestD {
			best, bestD = k.name, d
		}
	}
	if bestD <= 3 || (len(name) >= 5 && strings.Contains(best, strings.ToLower(name))) {
		return fmt.Sprintf("%s; did you mean %q?", msg, best)
	}
	return msg + "; the keys are " + strings.Join(Keys(), ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
