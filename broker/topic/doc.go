// Package topic owns MQTT-SN topic names and topic filters: validating them, matching a
// filter against a name with MQTT 3.1.1 wildcard semantics, the two-octet short topic
// names of MQTT-SN and their 16-bit form, and Index, the subscription index the broker
// engine consults for every PUBLISH.
//
// Names and filters are octet strings split into levels by '/'. A filter level "+" matches
// exactly one level (including an empty one); a last level "#" matches any number of
// levels, including none, so "a/#" matches "a". A filter whose first character is a
// wildcard does not match a name starting with '$' ("$SYS/…" is reached only by filters
// that name it).
//
// The package does not own topic ids: REGISTER ids, pre-defined ids and their tables are
// per-session state of package broker; here a short topic name is only converted to and
// from its 16-bit value. Retained messages, QoS downgrade and delivery are also the
// broker's.
//
// Match and Index.MatchAppend are on the hot path and do not allocate (MatchAppend needs
// a dst with enough capacity). Index is not safe for concurrent use: the one loop that
// owns the engine owns its Index.
package topic
