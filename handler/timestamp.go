package handler

import "time"

// timestampLayout is RFC 3339 in UTC with exactly three fractional digits,
// as JavaScript's Date.prototype.toISOString writes times.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// appendTimestamp appends t in UTC as timestampLayout writes it, and as
// t.UTC().AppendFormat(dst, timestampLayout) would: every event a stream
// sends carries one, and AppendFormat, which reads its layout as it goes,
// costs several times what writing the fixed fields does (most of the
// time Go spent building /events frames under WebAssembly). Years that do
// not have four digits are left to AppendFormat.
func appendTimestamp(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, timestampLayout)
	}
	hour, minute, second := t.Clock()
	var b [len(timestampLayout)]byte
	putDigits(b[0:4], year)
	b[4] = '-'
	putDigits(b[5:7], int(month))
	b[7] = '-'
	putDigits(b[8:10], day)
	b[10] = 'T'
	putDigits(b[11:13], hour)
	b[13] = ':'
	putDigits(b[14:16], minute)
	b[16] = ':'
	putDigits(b[17:19], second)
	b[19] = '.'
	putDigits(b[20:23], t.Nanosecond()/int(time.Millisecond))
	b[23] = 'Z'
	return append(dst, b[:]...)
}

// putDigits writes v, which is not negative, in decimal in all of b,
// zero-padded on the left.
func putDigits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}
