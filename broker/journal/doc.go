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
// so a torn or corrupt tail is detected record by record: recovery keeps every record
// before the first bad one and reports the file and offset of the damage.
package journal
