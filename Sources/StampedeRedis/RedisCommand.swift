import NIOCore

/// A command that writes its own arguments, straight into the connection's outgoing buffer.
///
/// For a hot path: ``RedisClient/send(_:)-([RedisArgument])`` takes an array, which costs
/// an allocation per call, and an argument built by joining strings costs another. A type
/// that knows its arguments writes them where they go:
///
/// ```swift
/// struct UserRead: RedisCommand {
///     let id: String
///     func write(to writer: inout RedisArgumentWriter) {
///         writer.append("HGETALL")
///         writer.append(concatenating: "user:", id)
///     }
/// }
/// let fields = try await client.send(UserRead(id: "42"))
/// ```
///
/// `write(to:)` runs twice per command sent, once to measure the arguments and once to write
/// them, and must write the same arguments both times. A command whose second pass writes a
/// different number of arguments or bytes fails with ``RedisError/Code/invalidArgument``,
/// and nothing of it is sent; one that writes other bytes of the same sizes is sent as
/// written. The writing pass runs under the connection's lock: it must not block or call
/// into the client.
public protocol RedisCommand: Sendable {
    /// Writes the command's name, then its arguments, each binary-safe.
    func write(to writer: inout RedisArgumentWriter)
}

/// Where a ``RedisCommand`` writes its arguments. It exists only during
/// ``RedisCommand/write(to:)``.
///
/// A first pass measures the command and a second writes it into room reserved for it in
/// one go, as the array encoder does. Its calls are inlinable: left generic across modules,
/// a call went through type metadata and was slower than the allocations the writer saves.
public struct RedisArgumentWriter: ~Copyable {
    /// Where the next argument goes; `nil` while measuring.
    @usableFromInline var cursor: UnsafeMutableRawPointer?
    /// The end of the room reserved for the command.
    @usableFromInline let end: UnsafeMutableRawPointer?
    /// Arguments written (or measured) so far.
    @usableFromInline var count = 0
    /// While measuring: the bytes the arguments take, heads included.
    @usableFromInline var byteCount = 0
    /// Set when an argument would not fit in the room measured for the command: nothing
    /// more is written, and the command is not sent.
    @usableFromInline var overflowed = false

    private init(cursor: UnsafeMutableRawPointer?, end: UnsafeMutableRawPointer?) {
        self.cursor = cursor
        self.end = end
    }

    /// Appends one argument.
    @inlinable
    public mutating func append(_ argument: RedisArgument) {
        argument.withUnsafeBytes { bytes in
            guard let body = beginArgument(length: bytes.count), let base = bytes.baseAddress else { return }
            body.copyMemory(from: base, byteCount: bytes.count)
        }
    }

    /// Appends one argument made of `parts` one after another, without joining them first.
    @inlinable
    public mutating func append(concatenating parts: String...) {
        var length = 0
        for part in parts { length += part.utf8.count }
        guard var at = beginArgument(length: length) else { return }
        for part in parts {
            let utf8 = part.utf8
            let copied: Void? = utf8.withContiguousStorageIfAvailable { bytes in
                if let base = bytes.baseAddress { at.copyMemory(from: base, byteCount: bytes.count) }
            }
            if copied == nil {
                for byte in utf8 {
                    at.storeBytes(of: byte, as: UInt8.self)
                    at += 1
                }
            } else {
                at += utf8.count
            }
        }
    }

    /// Counts an argument of `length` bytes; when writing, writes its head and the CR LF
    /// after it and returns where its `length` bytes go.
    @usableFromInline
    mutating func beginArgument(length: Int) -> UnsafeMutableRawPointer? {
        count += 1
        let size = 5 + RESPEncoder.decimalLength(length) + length  // $<length>\r\n<bytes>\r\n
        guard let at = cursor, let end else {
            byteCount += size
            return nil
        }
        // A command that writes more than it measured must not write past its room.
        guard !overflowed, end - at >= size else {
            overflowed = true
            return nil
        }
        at.storeBytes(of: UInt8(ascii: "$"), as: UInt8.self)
        let body = RESPEncoder.writeNewline(at: RESPEncoder.writeDecimal(length, at: at + 1))
        cursor = RESPEncoder.writeNewline(at: body + length)
        return body
    }

    /// How many arguments `command` writes, and how many bytes they take.
    static func measure(_ command: some RedisCommand) -> (count: Int, byteCount: Int) {
        var measure = RedisArgumentWriter(cursor: nil, end: nil)
        command.write(to: &measure)
        return (measure.count, measure.byteCount)
    }

    /// Appends `command`, as measured, to `buffer`: a RESP array of bulk strings. `false`,
    /// with nothing appended, when the command wrote a different number of arguments or
    /// bytes than it measured.
    static func encode(_ command: some RedisCommand, measured: (count: Int, byteCount: Int), into buffer: inout ByteBuffer) -> Bool {
        let length = 3 + RESPEncoder.decimalLength(measured.count) + measured.byteCount
        var consistent = false
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { output in
            let start = output.baseAddress!
            start.storeBytes(of: UInt8(ascii: "*"), as: UInt8.self)
            let arguments = RESPEncoder.writeNewline(at: RESPEncoder.writeDecimal(measured.count, at: start + 1))
            var writer = RedisArgumentWriter(cursor: arguments, end: start + length)
            command.write(to: &writer)
            // Bytes that are not the command measured would break every later reply's match
            // to its command: they are left uncommitted (0 bytes written).
            consistent = !writer.overflowed && writer.count == measured.count && writer.cursor == start + length
            return consistent ? length : 0
        }
        return consistent
    }
}

extension RedisClient {
    /// Sends a command that writes its own arguments (see ``RedisCommand``) and returns its
    /// reply. Like ``send(_:)-([RedisArgument])`` in every other way.
    ///
    /// - Throws: ``RedisError``, as ``send(_:)-([RedisArgument])``;
    ///   ``RedisError/Code/invalidArgument`` when the command writes no argument, or a
    ///   different number of arguments or bytes than it measured (nothing of it is sent then).
    @discardableResult
    nonisolated(nonsending) public func send(_ command: some RedisCommand) async throws -> RedisValue {
        let measured = RedisArgumentWriter.measure(command)
        guard measured.count > 0 else { throw RedisError(.invalidArgument, "a command needs at least its name") }
        return try await connection().send { RedisArgumentWriter.encode(command, measured: measured, into: &$0) }
    }
}
