import Foundation

/// Turns values into the bytes stored in Redis and back.
public protocol CacheCodec: Sendable {
    func encode<Value: Encodable>(_ value: Value) throws -> [UInt8]
    func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value
}

/// `Codable` values as JSON; `[UInt8]` and `Data` pass through as they are.
public struct JSONCacheCodec: CacheCodec {
    public init() {}

    public func encode<Value: Encodable>(_ value: Value) throws -> [UInt8] {
        if let bytes = value as? [UInt8] { return bytes }
        if let data = value as? Data { return Array(data) }
        return Array(try JSONEncoder().encode(value))
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from bytes: [UInt8]) throws -> Value {
        if Value.self == [UInt8].self { return bytes as! Value }
        if Value.self == Data.self { return Data(bytes) as! Value }
        return try JSONDecoder().decode(Value.self, from: Data(bytes))
    }
}
