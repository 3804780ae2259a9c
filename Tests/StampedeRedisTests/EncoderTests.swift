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
}
