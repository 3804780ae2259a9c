/// A key compared and hashed by its UTF-8 bytes, as Redis compares keys.
///
/// Swift's `String` equality is canonical equivalence: `"\u{e9}"` and `"e\u{301}"` are equal
/// strings but different Redis keys. The in-process maps that stand for Redis keys (the
/// single flight, the near cache, the waiters for fills, the local lock gates) key on this,
/// so that two keys share an entry only when Redis would.
@usableFromInline
struct ExactKey: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline let string: String

    @inlinable init(_ string: String) { self.string = string }

    @inlinable
    static func == (lhs: ExactKey, rhs: ExactKey) -> Bool {
        guard lhs.string.utf8.count == rhs.string.utf8.count else { return false }
        var (left, right) = (lhs.string, rhs.string)
        return left.withUTF8 { left in right.withUTF8 { right in left.elementsEqual(right) } }
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        var bytes = string
        bytes.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    @usableFromInline var description: String { string }
}
