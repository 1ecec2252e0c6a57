// Package journal is the durable form of the broker's state: a log of checksummed
// records that the engine produces and a file store that appends, syncs, recovers and
// compacts them.
//
// The engine stays sans-IO: it appends the records that a call changed to a buffer
// (Encoder), and the driver writes that buffer — and, under the strict policy, syncs it —
// before it sends the call's datagrams, so no acknowledgement leaves before the state
// it promises is on disk.
//
// Each record is framed as
//
//	length uint32 (big endian, of kind+body) | crc32c uint32 (of kind+body) | kind uint8 | body
//
// so damage is detected record by record. Recovery (Recover, Open) skips each damaged
// stretch — resynchronising on the framing and checksum — and keeps every valid record
// before and after it, reporting where the damage was and how much was discarded. The
// writer refuses a record the reader would reject (Check), so the log never holds one.
package journal
