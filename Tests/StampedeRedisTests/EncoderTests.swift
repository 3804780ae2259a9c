import CHiredis
import NIOCore
@testable import StampedeRedis
import Testing

@Suite("RESP encoding")
struct EncoderTests {
    /// What hiredis writes for `arguments`: the reference the encoder must match byte for byte.
    func hiredis(_ arguments: [[UInt8]]) -> [UInt8] {
        var pointers: [UnsafePointer<CChar>?] = []
        let copies = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { UnsafeMutableRawPointer(copy).copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(copy), byteCount: bytes.count) }
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        pointers = copies.map { UnsafePointer($0) }
        var lengths = arguments.map(\.count)
        var formatted: UnsafeMutablePointer<CChar>?
        let length = redisFormatCommandArgv(&formatted, Int32(arguments.count), &pointers, &lengths)
        defer { redisFreeCommand(formatted) }
        return Array(UnsafeRawBufferPointer(start: formatted, count: Int(length)))
    }

    func encoded(_ arguments: [RedisArgument]) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        RESPEncoder.encode(arguments, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test("the encoder writes what hiredis writes, for text, binary, empty and long arguments and many of them")
    func matchesHiredis() {
        let cases: [[[UInt8]]] = [
            [Array("PING".utf8)],
            [Array("GET".utf8), Array("user:42".utf8)],
            [Array("SET".utf8), Array("k".utf8), [], Array("PX".utf8), Array("30000".utf8)],
            [Array("SET".utf8), [0, 13, 10, 255, 36, 42], Array(repeating: 120, count: 100_000)],
            [Array("HMGET".utf8)] + (0..<150).map { Array("field\($0)".utf8) },
            [Array("SET".utf8), Array(repeating: 7, count: 9), Array(repeating: 7, count: 10), Array(repeating: 7, count: 99)],
        ]
        for arguments in cases {
            #expect(encoded(arguments.map { RedisArgument(bytes: $0) }) == hiredis(arguments), "\(arguments.map(\.count))")
        }
        // Strings and bytes of the same content encode alike.
        #expect(encoded(["SET", "k\u{e9}", RedisArgument(12)]) == hiredis([Array("SET".utf8), Array("k\u{e9}".utf8), Array("12".utf8)]))
    }

    @Test("commands appended to one buffer follow one another")
    func appends() {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        RESPEncoder.encode(["TIME"], into: &buffer)
        RESPEncoder.encode(["GET", "a"], into: &buffer)
        #expect(String(buffer: buffer) == "*1\r\n$4\r\nTIME\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
    }

    /// A command that writes its arguments: a binary one, then one joined from parts.
    struct Joined: RedisCommand {
        let name: RedisArgument
        let binary: [UInt8]
        let parts: (String, Substring, String)

        func write(to writer: inout RedisArgumentWriter) {
            writer.append(name)
            writer.append(RedisArgument(bytes: binary))
            writer.append(concatenating: parts.0, String(parts.1), parts.2)
            writer.append(concatenating: "")
        }
    }

    @Test("a command that writes its own arguments is encoded as the same arguments in an array")
    func writtenCommands() {
        let long = String(repeating: "x", count: 100_000)
        let cases = [
            Joined(name: "SET", binary: [0, 13, 10, 255], parts: ("{ns:", "k\u{e9}y"[...], "}")),
            Joined(name: "SET", binary: [], parts: ("", ""[...], "")),
            Joined(name: "SET", binary: Array(repeating: 7, count: 10), parts: (long, long.dropFirst(1), long)),
        ]
        for command in cases {
            let joined = command.parts.0 + String(command.parts.1) + command.parts.2
            let arguments = [command.name, RedisArgument(bytes: command.binary), RedisArgument(joined), ""]
            let measured = RedisArgumentWriter.measure(command)
            #expect(measured.count == 4)
            var buffer = ByteBufferAllocator().buffer(capacity: 0)
            #expect(RedisArgumentWriter.encode(command, measured: measured, into: &buffer))
            #expect(Array(buffer.readableBytesView) == encoded(arguments))
            #expect(Array(buffer.readableBytesView) == hiredis(arguments.map(\.bytes)))
        }
    }

    /// Writes `shift` more arguments each time it is asked (fewer when negative).
    final class Shifting: RedisCommand, @unchecked Sendable {
        let shift: Int
        var asked = 0
        init(shift: Int) { self.shift = shift }
        func write(to writer: inout RedisArgumentWriter) {
            for _ in 0..<(3 + asked * shift) { writer.append("PING") }
            writer.append(concatenating: "a", "b")
            asked += 1
        }
    }

    @Test("a command that writes more or less than it measured appends nothing, and says so", arguments: [1, -1])
    func inconsistentCommandsAppendNothing(shift: Int) {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        RESPEncoder.encode(["GET", "a"], into: &buffer)
        let before = Array(buffer.readableBytesView)
        let command = Shifting(shift: shift)
        #expect(!RedisArgumentWriter.encode(command, measured: RedisArgumentWriter.measure(command), into: &buffer))
        #expect(Array(buffer.readableBytesView) == before)
        // The same command, asked consistently, is written.
        let steady = Shifting(shift: 0)
        #expect(RedisArgumentWriter.encode(steady, measured: RedisArgumentWriter.measure(steady), into: &buffer))
        #expect(Array(buffer.readableBytesView) == before + encoded(["PING", "PING", "PING", "ab"]))
    }

    /// Measured as `ECHO abc` (19 bytes of arguments); then writes a long argument that does
    /// not fit, and a 12-byte one that fills the room exactly: two arguments, all 19 bytes.
    final class Swapping: RedisCommand, @unchecked Sendable {
        var asked = 0
        func write(to writer: inout RedisArgumentWriter) {
            asked += 1
            if asked == 1 {
                writer.append("ECHO")
                writer.append("abc")
            } else {
                writer.append(concatenating: String(repeating: "x", count: 20))
                writer.append("123456789012")
            }
        }
    }

    @Test("an argument that does not fit is not skipped: a later one that fills the room cannot make the command look whole")
    func anArgumentThatDoesNotFitRefusesTheCommand() {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        let command = Swapping()
        let measured = RedisArgumentWriter.measure(command)
        #expect(measured.count == 2)
        #expect(!RedisArgumentWriter.encode(command, measured: measured, into: &buffer))
        #expect(buffer.readableBytes == 0)
    }
}
