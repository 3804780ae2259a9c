import NIOCore

/// Encodes commands as RESP arrays of bulk strings, straight into the outgoing buffer.
///
/// The bytes are exactly what hiredis's `redisFormatCommandArgv` produces (the tests hold
/// the two side by side); writing them here saves what that call costs on every command:
/// a `sprintf` per argument and a heap buffer to copy from.
@usableFromInline
enum RESPEncoder {
    /// Appends `arguments` as one command to `buffer`.
    ///
    /// The length is worked out first, so the buffer grows (and checks that it may write)
    /// once per command; the bytes then go in with plain stores and copies, not a
    /// ByteBuffer call per byte.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        precondition(!arguments.isEmpty, "a Redis command has at least a name")
        var length = 3 + decimalLength(arguments.count)  // *<count>\r\n
        for argument in arguments {
            let count = argument.count
            length += 5 + decimalLength(count) + count  // $<length>\r\n<bytes>\r\n
        }
        let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { output in
            var at = output.baseAddress!
            at.storeBytes(of: UInt8(ascii: "*"), as: UInt8.self)
            at = writeDecimal(arguments.count, at: at + 1)
            at = writeNewline(at: at)
            for argument in arguments {
                argument.withUnsafeBytes { bytes in
                    at.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
                    at = writeDecimal(bytes.count, at: at + 1)
                    at = writeNewline(at: at)
                    if let base = bytes.baseAddress { at.copyMemory(from: base, byteCount: bytes.count) }
                    at = writeNewline(at: at + bytes.count)
                }
            }
            return at - output.baseAddress!
        }
        // Checked in release builds too: a mismatch would have written past the reservation.
        precondition(written == length, "the RESP length computed ahead must match the bytes written")
    }

    /// How many digits `value` (not negative) has in decimal.
    @inlinable
    static func decimalLength(_ value: Int) -> Int {
        var digits = 1
        var rest = value
        while rest >= 10 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    /// Writes `value` (not negative) in decimal ASCII at `at`; returns the end.
    @inlinable
    static func writeDecimal(_ value: Int, at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        let end = at + decimalLength(value)
        var cursor = end
        var rest = value
        repeat {
            cursor -= 1
            cursor.storeBytes(of: UInt8(ascii: "0") + UInt8(rest % 10), as: UInt8.self)
            rest /= 10
        } while rest > 0
        return end
    }

    @inlinable
    static func writeNewline(at: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        at.storeBytes(of: UInt8(ascii: "\r"), as: UInt8.self)
        (at + 1).storeBytes(of: UInt8(ascii: "\n"), as: UInt8.self)
        return at + 2
    }
}
