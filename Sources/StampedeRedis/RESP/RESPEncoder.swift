import NIOCore

/// Encodes commands as RESP arrays of bulk strings, straight into the outgoing buffer.
///
/// The bytes are exactly what hiredis's `redisFormatCommandArgv` produces (the tests hold
/// the two side by side); writing them here saves what that call costs on every command:
/// a `sprintf` per argument and a heap buffer to copy from.
enum RESPEncoder {
    /// Appends `arguments` as one command to `buffer`.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        precondition(!arguments.isEmpty, "a Redis command has at least a name")
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        for argument in arguments {
            argument.withUnsafeBytes { bytes in
                buffer.writeInteger(UInt8(ascii: "$"))
                writeDecimal(bytes.count, into: &buffer)
                buffer.writeStaticString("\r\n")
                buffer.writeBytes(bytes)
                buffer.writeStaticString("\r\n")
            }
        }
    }

    /// `value` (not negative) in decimal ASCII, without allocating.
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var rest = value
            var start = digits.count
            while rest > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            buffer.writeBytes(UnsafeBufferPointer(rebasing: digits[start...]))
        }
    }
}
