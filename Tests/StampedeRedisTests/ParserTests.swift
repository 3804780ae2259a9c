import NIOCore
@testable import StampedeRedis
import Testing

@Suite("RESP parsing")
struct ParserTests {
    /// Replies of every kind, nested, back to back, with what each must parse to.
    static let replies: [(wire: String, value: RedisValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR wrong\r\n", .error("ERR wrong")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhe\r\no\r\n", .bulkString(Array("he\r\no".utf8))),
        ("$0\r\n\r\n", .bulkString([])),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        ("*2\r\n$1\r\nv\r\n$-1\r\n", .array([.bulkString(Array("v".utf8)), .null])),
        (
            "*4\r\n:1\r\n*0\r\n*2\r\n*1\r\n+deep\r\n-E inner\r\n$3\r\nend\r\n",
            .array([.integer(1), .array([]), .array([.array([.simpleString("deep")]), .error("E inner")]), .bulkString(Array("end".utf8))])
        ),
        ("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", .array(["message", "ch", "x"].map { .bulkString(Array($0.utf8)) })),
    ]

    func parseAll(_ chunks: [[UInt8]]) throws -> [RedisValue] {
        let parser = RESPParser()
        var values: [RedisValue] = []
        for chunk in chunks {
            try parser.feed(ByteBuffer(bytes: chunk))
            while let value = try parser.next() { values.append(value) }
        }
        return values
    }

    @Test func everyKindOfReplyParsesAtOnce() throws {
        let wire = Array(Self.replies.map(\.wire).joined().utf8)
        #expect(try parseAll([wire]) == Self.replies.map(\.value))
    }

    @Test("replies cut at every byte still parse, each one once")
    func repliesCutAnywhereParse() throws {
        let wire = Array(Self.replies.map(\.wire).joined().utf8)
        for cut in 1..<wire.count {
            #expect(try parseAll([Array(wire[..<cut]), Array(wire[cut...])]) == Self.replies.map(\.value), "cut at \(cut)")
        }
        #expect(try parseAll(wire.map { [$0] }) == Self.replies.map(\.value), "one byte at a time")
    }

    @Test("an array whose elements have not come yet gives no reply, whatever count it announces")
    func anArrayStillComingIsNotAReply() throws {
        let parser = RESPParser()
        try parser.feed(ByteBuffer(string: "*2147483647\r\n:1\r\n"))
        #expect(try parser.next() == nil)
        try parser.feed(ByteBuffer(string: "*1\r\n"))
        #expect(try parser.next() == nil)
    }

    @Test("element counts that hiredis's C int cuts are a protocol error, not a hang or a crash", arguments: [
        "*-2\r\n",                     // negative, not the null array
        "*2147483648\r\n:1\r\n",       // 2^31: negative as an int
        "*4294967296\r\n:1\r\n",       // 2^32: zero as an int, yet hiredis reads elements
        "*-2147483649\r\n+OK\r\n",     // wraps to 2^31 - 1 as an int, yet hiredis reads none
        "*1\r\n*4294967296\r\n:1\r\n", // the same, nested
    ])
    func outOfRangeCountsAreAProtocolError(wire: String) throws {
        let parser = RESPParser()
        var error: RedisError?
        do {
            try parser.feed(ByteBuffer(string: wire))
            while try parser.next() != nil {}
        } catch let caught {
            error = caught
        }
        // hiredis builds with the fix for CVE-2021-32765 (Debian's 0.14.1-2 on) refuse these
        // counts themselves; without it, the builder's checks stop the reader.
        #expect(error?.code == .protocolError, "\(String(describing: error))")
        #expect(["invalid RESP from server: an array whose element count is out of range",
                 "invalid RESP from server: Multi-bulk length out of range"].contains(error?.message ?? ""))
    }

    @Test func arraysNestedDeeperThanHiredisReadsAreAProtocolError() throws {
        let parser = RESPParser()
        try parser.feed(ByteBuffer(string: String(repeating: "*1\r\n", count: 9) + ":1\r\n"))
        #expect(throws: RedisError.self) { _ = try parser.next() }
        let seven = RESPParser()
        try seven.feed(ByteBuffer(string: String(repeating: "*1\r\n", count: 7) + ":1\r\n"))
        var value = RedisValue.integer(1)
        for _ in 0..<7 { value = .array([value]) }
        #expect(try seven.next() == value)
    }

    @Test func bytesThatAreNotRESPThrow() throws {
        let parser = RESPParser()
        try? parser.feed(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\n"))
        #expect(throws: RedisError.self) { _ = try parser.next() }
    }
}
