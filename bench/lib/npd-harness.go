// npd-harness: node-problem-detector's kernel monitor, per record, on a corpus
// file instead of /dev/kmsg — the Go side of bench/npd.bench.ts. Built by
// hack/npd-build.sh in a throwaway module that requires
// k8s.io/node-problem-detector (the version is pinned there); not part of the
// project's TypeScript build.
//
// What it does per record is what NPD v1.34.0 does per kernel record, read
// from its sources (not copied):
//
//  1. go-kmsg-parser's read loop: the record's bytes become a Go string (a
//     copy), then its parse: split once at ';', split the prefix at ',',
//     three integer conversions, timestamp = boot time + usec. That parse
//     function is unexported (and its Parser only opens the real /dev/kmsg),
//     so this file does the same field split itself: parseRecord below.
//  2. NPD's kmsg watcher: skip an empty message, drop records older than the
//     watcher's start time, make a types.Log with the message trimmed.
//  3. NPD's log monitor (parseLog): LogBuffer.Push, then LogBuffer.Match of
//     every rule of the config (NPD's own exported buffer, called as is: it
//     compiles the rule's regexp and joins the buffered lines on every call),
//     and for every match what generateStatus does: the event message, the
//     condition update of a permanent rule, the problem counter/gauge metric
//     (NPD's own GlobalProblemMetricsManager).
//
// -compiled-rules swaps NPD's buffer for one that compiles each rule once
// (see cachedBuffer): not NPD, a measure of what its per-call compile costs.
//
// Left out on purpose (favouring NPD): the read(2) of /dev/kmsg, klog's
// "New status generated" line per match, and — unless -channels — the
// goroutine hand-offs between the parser, the watcher and the monitor.
// With -channels the three stages run as NPD runs them: a parser goroutine
// sends Messages on a channel of 1, the watcher goroutine Logs on a channel
// of 100, the monitor loop statuses on a channel of 1000 that a consumer
// drains.
//
// Output: one JSON object on stdout (records, seconds, cpu_seconds,
// records_per_s, events, matches by reason).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/node-problem-detector/pkg/problemmetrics"
	"k8s.io/node-problem-detector/pkg/systemlogmonitor"
	logtypes "k8s.io/node-problem-detector/pkg/systemlogmonitor/types"
	"k8s.io/node-problem-detector/pkg/types"
	"k8s.io/node-problem-detector/pkg/util"
)

// message is the fields go-kmsg-parser's Message carries.
type message struct {
	priority  int
	sequence  int
	timestamp time.Time
	text      string
}

// parseRecord: the same work as go-kmsg-parser's (unexported) parseMessage.
func parseRecord(input string, bootTime time.Time) (message, error) {
	parts := strings.SplitN(input, ";", 2)
	if len(parts) != 2 {
		return message{}, fmt.Errorf("no ';'")
	}
	meta := strings.Split(parts[0], ",")
	if len(meta) < 3 {
		return message{}, fmt.Errorf("fewer than 3 prefix fields")
	}
	pri, err := strconv.Atoi(meta[0])
	if err != nil {
		return message{}, err
	}
	seq, err := strconv.Atoi(meta[1])
	if err != nil {
		return message{}, err
	}
	usec, err := strconv.ParseInt(meta[2], 10, 64)
	if err != nil {
		return message{}, err
	}
	return message{priority: pri, sequence: seq, timestamp: bootTime.Add(time.Duration(usec) * time.Microsecond), text: parts[1]}, nil
}

// monitor: the state of NPD's logMonitor that parseLog and generateStatus use.
type monitor struct {
	cfg        systemlogmonitor.MonitorConfig
	buffer     systemlogmonitor.LogBuffer
	conditions []types.Condition
	matches    map[string]int
	events     int
}

func newMonitor(cfg systemlogmonitor.MonitorConfig, compiled bool) *monitor {
	m := &monitor{cfg: cfg, buffer: systemlogmonitor.NewLogBuffer(cfg.BufferSize), matches: map[string]int{}}
	if compiled {
		m.buffer = newCachedBuffer(cfg.BufferSize)
	}
	m.conditions = make([]types.Condition, len(cfg.DefaultConditions))
	copy(m.conditions, cfg.DefaultConditions)
	for i := range m.conditions {
		m.conditions[i].Status = types.False
		m.conditions[i].Transition = time.Now()
	}
	return m
}

// parseLog: push, match every rule, a status per match (NPD's parseLog).
func (m *monitor) parseLog(log *logtypes.Log, out func(*types.Status)) {
	m.buffer.Push(log)
	for _, rule := range m.cfg.Rules {
		matched := m.buffer.Match(rule.Pattern)
		if len(matched) == 0 {
			continue
		}
		m.matches[rule.Reason]++
		out(m.status(matched, rule))
	}
}

// status: what NPD's generateStatus does for a match.
func (m *monitor) status(logs []*logtypes.Log, rule logtypes.Rule) *types.Status {
	ts := logs[0].Timestamp
	lines := make([]string, 0, len(logs))
	for _, l := range logs {
		lines = append(lines, l.Message)
	}
	msg := strings.Join(lines, "\n")
	if rule.PatternGeneratedMessageSuffix != "" {
		msg = fmt.Sprintf("%s; %s", msg, rule.PatternGeneratedMessageSuffix)
	}
	var events []types.Event
	var changed []*types.Condition
	if rule.Type == types.Temp {
		events = append(events, types.Event{Severity: types.Warn, Timestamp: ts, Reason: rule.Reason, Message: msg})
	} else {
		for i := range m.conditions {
			c := &m.conditions[i]
			if c.Type != rule.Condition {
				continue
			}
			if c.Status == types.False || c.Reason != rule.Reason {
				c.Transition = ts
				c.Message = msg
				events = append(events, util.GenerateConditionChangeEvent(c.Type, types.True, rule.Reason, msg, ts))
			}
			c.Status = types.True
			c.Reason = rule.Reason
			changed = append(changed, c)
			break
		}
	}
	if *m.cfg.EnableMetricsReporting {
		for _, e := range events {
			_ = problemmetrics.GlobalProblemMetricsManager.IncrementProblemCounter(e.Reason, 1)
		}
		for _, c := range changed {
			_ = problemmetrics.GlobalProblemMetricsManager.SetProblemGauge(c.Type, c.Reason, c.Status == types.True)
		}
	}
	m.events += len(events)
	return &types.Status{Source: m.cfg.Source, Events: events, Conditions: m.conditions}
}

// cachedBuffer: NPD's log buffer with the regexps compiled once — what its
// Match would cost if its "Cache regexp" TODO were done. Not what NPD runs;
// -compiled-rules uses it to show where NPD's time goes. Same semantics:
// the last max messages joined with newlines, the rule must match up to the
// end, the matched lines are the ones the match spans.
type cachedBuffer struct {
	logs    []*logtypes.Log
	max     int
	current int
	regexps map[string]*regexp.Regexp
}

func newCachedBuffer(max int) *cachedBuffer {
	return &cachedBuffer{logs: make([]*logtypes.Log, max), max: max, regexps: map[string]*regexp.Regexp{}}
}

func (b *cachedBuffer) Push(l *logtypes.Log) {
	b.logs[b.current%b.max] = l
	b.current++
}

func (b *cachedBuffer) String() string {
	var sb strings.Builder
	for i := 0; i < b.max; i++ {
		if i > 0 {
			sb.WriteByte('\n')
		}
		if l := b.logs[(b.current+i)%b.max]; l != nil {
			sb.WriteString(l.Message)
		}
	}
	return sb.String()
}

func (b *cachedBuffer) Match(expr string) []*logtypes.Log {
	re, ok := b.regexps[expr]
	if !ok {
		re = regexp.MustCompile(expr + `\z`)
		b.regexps[expr] = re
	}
	text := b.String()
	loc := re.FindStringIndex(text)
	if loc == nil {
		return nil
	}
	// the lines from the newest back to the one the match starts in
	span := len(text) - loc[0] - 1
	var matched []*logtypes.Log
	total := 0
	for i := b.current + b.max - 1; i >= b.current; i-- {
		l := b.logs[i%b.max]
		if l == nil {
			break
		}
		matched = append([]*logtypes.Log{l}, matched...)
		total += len(l.Message) + 1
		if total > span {
			break
		}
	}
	return matched
}

// splitRecords: the corpus file is what `cat /dev/kmsg` prints: a record's
// first line, then its dictionary lines (each starting with a space). Each
// record keeps its trailing newline, as one read(2) of /dev/kmsg returns it.
func splitRecords(data []byte) [][]byte {
	var out [][]byte
	start := -1
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos + 1
		}
		if data[pos] != ' ' && data[pos] != '\n' {
			if start >= 0 {
				out = append(out, data[start:pos])
			}
			start = pos
		}
		pos = end
	}
	if start >= 0 {
		out = append(out, data[start:])
	}
	return out
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

type result struct {
	Records     int            `json:"records"`
	Seconds     float64        `json:"seconds"`
	CPUSeconds  float64        `json:"cpu_seconds"`
	RecordsPerS float64        `json:"records_per_s"`
	Events      int            `json:"events"`
	Statuses    int            `json:"statuses"`
	Skipped     int            `json:"skipped"`
	Matches     map[string]int `json:"matches"`
	Channels    bool           `json:"channels"`
	Compiled    bool           `json:"compiled_rules"`
	Gomaxprocs  string         `json:"gomaxprocs"`
	Rules       int            `json:"rules"`
	Corpus      int            `json:"corpus_records"`
	NPDVersion  string         `json:"npd_version"`
}

// npdVersion is set by hack/npd-build.sh (-ldflags -X).
var npdVersion = "unknown"

func main() {
	corpus := flag.String("corpus", "", "corpus file: raw /dev/kmsg records")
	config := flag.String("config", "", "NPD kernel monitor config (config/kernel-monitor.json of the module)")
	warmup := flag.Int("warmup", 50000, "records run before the timed part")
	n := flag.Int("records", 200000, "records timed (the corpus is cycled)")
	channels := flag.Bool("channels", false, "run parser, watcher and monitor as goroutines linked by channels, as NPD does")
	compiled := flag.Bool("compiled-rules", false, "not NPD: its log buffer with each rule's regexp compiled once")
	flag.Parse()
	if *corpus == "" || *config == "" {
		fmt.Fprintln(os.Stderr, "usage: npd-harness -corpus FILE -config kernel-monitor.json [-warmup N] [-records N] [-channels]")
		os.Exit(2)
	}
	raw, err := os.ReadFile(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var cfg systemlogmonitor.MonitorConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *config, err)
		os.Exit(1)
	}
	cfg.ApplyDefaultConfiguration()
	if err := cfg.ValidateRules(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", *config, err)
		os.Exit(1)
	}
	data, err := os.ReadFile(*corpus)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	records := splitRecords(data)
	if len(records) == 0 {
		fmt.Fprintf(os.Stderr, "%s: no records\n", *corpus)
		os.Exit(1)
	}

	// The corpus' timestamps are microseconds since boot; with boot time "now"
	// and the watcher's start time a lookback before it, every record passes
	// the start-time check (the check itself still runs per record).
	bootTime := time.Now()
	lookback, err := time.ParseDuration(cfg.Lookback)
	if err != nil {
		lookback = 0
	}
	startTime := bootTime.Add(-lookback)

	m := newMonitor(cfg, *compiled)
	statuses := 0
	skipped := 0
	// One record through NPD's watcher steps; nil when the watcher drops it.
	toLog := func(b []byte) *logtypes.Log {
		msg, err := parseRecord(string(b), bootTime)
		if err != nil || msg.text == "" || msg.timestamp.Before(startTime) {
			skipped++
			return nil
		}
		return &logtypes.Log{Message: strings.TrimSpace(msg.text), Timestamp: msg.timestamp}
	}
	direct := func(count int) {
		for i := 0; i < count; i++ {
			if l := toLog(records[i%len(records)]); l != nil {
				m.parseLog(l, func(*types.Status) { statuses++ })
			}
		}
	}
	piped := func(count int) {
		kmsgs := make(chan message, 1)
		logs := make(chan *logtypes.Log, 100)
		out := make(chan *types.Status, 1000)
		done := make(chan struct{})
		// each written by one goroutine, read after both ended
		badParse, dropped := 0, 0
		// go-kmsg-parser's read loop
		go func() {
			for i := 0; i < count; i++ {
				msg, err := parseRecord(string(records[i%len(records)]), bootTime)
				if err != nil {
					badParse++
					continue
				}
				kmsgs <- msg
			}
			close(kmsgs)
		}()
		go func() { // NPD's kmsg watcher loop
			for msg := range kmsgs {
				if msg.text == "" || msg.timestamp.Before(startTime) {
					dropped++
					continue
				}
				logs <- &logtypes.Log{Message: strings.TrimSpace(msg.text), Timestamp: msg.timestamp}
			}
			close(logs)
		}()
		go func() { // whoever reads the monitor's statuses
			for range out {
				statuses++
			}
			close(done)
		}()
		for l := range logs { // NPD's monitor loop
			m.parseLog(l, func(s *types.Status) { out <- s })
		}
		close(out)
		<-done
		skipped += badParse + dropped
	}
	run := direct
	if *channels {
		run = piped
	}

	run(*warmup)
	for k := range m.matches {
		delete(m.matches, k)
	}
	m.events, statuses, skipped = 0, 0, 0
	c0 := cpuSeconds()
	t0 := time.Now()
	run(*n)
	secs := time.Since(t0).Seconds()
	cpu := cpuSeconds() - c0

	res := result{
		Records: *n, Seconds: secs, CPUSeconds: cpu, RecordsPerS: float64(*n) / secs,
		Events: m.events, Statuses: statuses, Skipped: skipped, Matches: m.matches,
		Channels: *channels, Compiled: *compiled, Gomaxprocs: os.Getenv("GOMAXPROCS"), Rules: len(cfg.Rules),
		Corpus: len(records), NPDVersion: npdVersion,
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
