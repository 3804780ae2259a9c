import CHiredis
import NIOCore

/// Encodes commands as RESP arrays of bulk strings with hiredis's `redisFormatCommandArgv`.
enum RESPEncoder {
    /// Appends `arguments` as one command to `buffer`.
    static func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) {
        precondition(!arguments.isEmpty, "a Redis command has at least a name")
        let count = arguments.count
        withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                // Pin each argument's storage while hiredis reads it: recursion keeps every
                // pointer inside its own `withUnsafeBufferPointer` scope without copying bytes.
                func pin(_ index: Int) {
                    if index == count {
                        var formatted: UnsafeMutablePointer<CChar>?
                        let length = redisFormatCommandArgv(&formatted, Int32(count), argv.baseAddress, lengths.baseAddress)
                        // hiredis fails only when malloc does.
                        guard length >= 0, let formatted else { fatalError("redisFormatCommandArgv: out of memory") }
                        buffer.writeBytes(UnsafeRawBufferPointer(start: formatted, count: Int(length)))
                        redisFreeCommand(formatted)
                        return
                    }
                    arguments[index].withUnsafeBytes { bytes in
                        // An empty argument may have no base address; any valid pointer will do for length 0.
                        let start = bytes.baseAddress ?? UnsafeRawPointer(argv.baseAddress!)
                        argv[index] = start.assumingMemoryBound(to: CChar.self)
                        lengths[index] = bytes.count
                        pin(index + 1)
                    }
                }
                pin(0)
            }
        }
    }
}
