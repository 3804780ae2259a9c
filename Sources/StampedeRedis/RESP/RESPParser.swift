import CHiredis
import NIOCore

/// Parses RESP replies with hiredis's `redisReader`.
///
/// The reader builds `RedisValue`s itself, through reply-object functions of ours, rather
/// than hiredis's own reply objects: those would be built, copied into Swift and freed
/// again for every reply.
///
/// Not thread-safe: one parser belongs to one channel and is used on its event loop only.
final class RESPParser {
    private let reader: UnsafeMutablePointer<redisReader>
    private let builder = ReplyBuilder()

    init() {
        guard let reader = redisReaderCreateWithFunctions(Self.functions) else { fatalError("redisReaderCreate: out of memory") }
        // Every read task carries the reader's privdata to the functions below.
        reader.pointee.privdata = Unmanaged.passUnretained(builder).toOpaque()
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Hands received bytes to the reader.
    func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw protocolError() }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    func next() throws(RedisError) -> RedisValue? {
        var done: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &done) == REDIS_OK else { throw protocolError() }
        guard done != nil else { return nil }
        // hiredis saw a whole reply; so must the builder, or the two read the bytes apart.
        guard let reply = builder.takeReply() else {
            throw RedisError(.protocolError, "invalid RESP from server: an array whose element count is out of range")
        }
        return reply
    }

    private func protocolError() -> RedisError {
        if let rejection = builder.rejection { return RedisError(.protocolError, "invalid RESP from server: \(rejection)") }
        let text = withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(.protocolError, "invalid RESP from server: \(text)")
    }

    // MARK: Reply-object functions

    /// What the functions hand back to hiredis: it only checks that it is not NULL and hands it
    /// back as a parent that the builder does not need. NULL stops the reader with an error
    /// (hiredis calls it out of memory; ``ReplyBuilder/rejection`` says what it was).
    private static var madeOne: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: 1) }

    /// Allocated once and never freed: the reader keeps a pointer to it, not a copy.
    private nonisolated(unsafe) static let functions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        functions.initialize(to: redisReplyObjectFunctions())
        functions.pointee.createString = { task, bytes, count in
            guard let task, let bytes, let builder = builder(of: task) else { return nil }
            let raw = UnsafeRawBufferPointer(start: bytes, count: count)
            switch task.pointee.type {
            case REDIS_REPLY_STATUS: builder.add(.simpleString(String(decoding: raw, as: UTF8.self)))
            case REDIS_REPLY_ERROR: builder.add(.error(String(decoding: raw, as: UTF8.self)))
            default: builder.add(.bulkString([UInt8](raw)))
            }
            return madeOne
        }
        functions.pointee.createArray = { task, count in
            guard let task, let builder = builder(of: task) else { return nil }
            // hiredis passes the count as a C int, cut from the 64-bit number it read, and
            // decides alone whether children follow: only a count that agrees is taken.
            // (Builds with the fix for CVE-2021-32765 refuse such counts before this.)
            guard count >= 0 else {
                builder.reject("an array whose element count is out of range")
                return nil
            }
            builder.openArray(count: Int(count))
            return madeOne
        }
        functions.pointee.createInteger = { task, value in
            guard let task, let builder = builder(of: task) else { return nil }
            builder.add(.integer(Int(value)))
            return madeOne
        }
        functions.pointee.createNil = { task in
            guard let task, let builder = builder(of: task) else { return nil }
            builder.add(.null)
            return madeOne
        }
        // Nothing to free: the values live in the builder.
        functions.pointee.freeObject = nil
        return functions
    }()

    /// The builder, when hiredis and it agree on where the value goes: a value with no parent
    /// task starts a reply, so no array may be open; one with a parent goes into the array
    /// open last. They disagree only on an element count that the C int cut (a count of
    /// 2^32 reaches us as 0, yet hiredis reads elements for it): the reader is stopped.
    private static func builder(of task: UnsafePointer<redisReadTask>) -> ReplyBuilder? {
        let builder = Unmanaged<ReplyBuilder>.fromOpaque(task.pointee.privdata).takeUnretainedValue()
        guard (task.pointee.parent == nil) == builder.isBetweenReplies else {
            builder.reject("an array whose element count is out of range")
            return nil
        }
        return builder
    }
}

/// Assembles one reply from the values hiredis reports, in the order they come on the wire:
/// every value goes into the innermost array still open, and an array closes once it has
/// all its elements.
final class ReplyBuilder {
    private struct State {
        var open: [(elements: [RedisValue], count: Int)] = []
        var reply: RedisValue?

        mutating func openArray(count: Int) {
            guard count > 0 else {
                add(.array([]))
                return
            }
            var elements: [RedisValue] = []
            // Bounded: the count is the server's word, and the elements may never come.
            elements.reserveCapacity(min(count, 1_024))
            open.append((elements, count))
        }

        mutating func add(_ value: RedisValue) {
            var value = value
            while !open.isEmpty {
                let last = open.count - 1
                open[last].elements.append(value)
                guard open[last].elements.count == open[last].count else { return }
                value = .array(open.removeLast().elements)
            }
            reply = value
        }
    }

    /// One stored property, changed by one call each time: a class's stored properties are
    /// checked for exclusive access at run time, once per access.
    private var state = State()

    /// Why the builder stopped the reader, if it did.
    private(set) var rejection: String?

    /// No array is open: the next value starts a reply.
    var isBetweenReplies: Bool { state.open.isEmpty }

    func reject(_ reason: String) { rejection = reason }

    /// An array of `count` elements starts; they are the values reported next.
    func openArray(count: Int) { state.openArray(count: count) }

    func add(_ value: RedisValue) { state.add(value) }

    /// The reply just completed; `nil` when none is, or arrays are still open.
    func takeReply() -> RedisValue? {
        defer { state.reply = nil }
        return state.open.isEmpty ? state.reply : nil
    }
}
