#if Hummingbird
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A response as the middleware keeps it in the cache: status, headers, body, and when it
/// was stored (for `Age`).
struct StoredResponse: Codable, Sendable {
    var status: Int
    /// Name and value pairs, in order.
    var headers: [[String]]
    var body: Data
    /// Seconds since 1970, when the handler produced it.
    var storedAt: Double

    /// Headers that describe one connection or one answer, never stored.
    static let notStored: Set<String> = ["connection", "keep-alive", "transfer-encoding", "date", "age", "set-cookie"]

    init(status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer, storedAt: Date) {
        self.status = status.code
        self.headers = headers.compactMap { field in
            Self.notStored.contains(field.name.canonicalName) ? nil : [field.name.rawName, field.value]
        }
        self.body = Data(buffer: body)
        self.storedAt = storedAt.timeIntervalSince1970
    }

    /// The stored response, with `Age` and the cache-status header added.
    func response(status cacheStatus: String, header: HTTPField.Name, now: Date) -> Response {
        var fields = HTTPFields()
        for pair in headers where pair.count == 2 {
            if let name = HTTPField.Name(pair[0]) { fields.append(HTTPField(name: name, value: pair[1])) }
        }
        let age = max(0, Int(now.timeIntervalSince1970 - storedAt))
        fields[HTTPField.Name("Age")!] = String(age)
        fields[header] = cacheStatus
        fields[.contentLength] = String(body.count)
        return Response(status: .init(code: status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
#endif
