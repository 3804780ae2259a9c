/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag,
/// modulo 16384.
///
/// A key's hash tag is what lies between its first `{` and the first `}` after it, when
/// that is not empty: keys that share a tag share a slot, so that a command or a script may
/// use them together. Stampede names every Redis key of a cache key or a lock that way
/// (`{N:K}`, `{N:K}:lock`, `{N:K}:fence`).
public struct HashSlot: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// How many slots a cluster has.
    public static let count = 16_384

    /// 0 ..< ``count``.
    public let value: Int

    public init?(_ value: Int) {
        guard (0..<Self.count).contains(value) else { return nil }
        self.value = value
    }

    /// The slot of `key`, by its bytes.
    public init(key: some Collection<UInt8>) {
        value = Int(Self.crc16(Self.hashedPart(of: key))) & (Self.count - 1)
    }

    public init(key: String) {
        self.init(key: key.utf8)
    }

    public init(key: RedisArgument) {
        self = key.withUnsafeBytes { HashSlot(key: $0) }
    }

    public static func < (lhs: HashSlot, rhs: HashSlot) -> Bool { lhs.value < rhs.value }
    public var description: String { "\(value)" }

    /// Whether `key` has a hash tag: a non-empty part between its first `{` and the first `}`
    /// after it.
    public static func hasHashTag(_ key: String) -> Bool {
        hashedPart(of: key.utf8).count != key.utf8.count
    }

    /// The bytes of `key` that decide its slot: its hash tag, or all of it.
    static func hashedPart<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key[...] }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key[...] }
        return key[afterOpen..<close]
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis computes it.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
