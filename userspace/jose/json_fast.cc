/* json_fast.cc - token payloads through simdjson, handed on as jansson values (json_fast.h).
 *
 * simdjson's DOM parser validates the whole document before we look at it: the grammar of
 * RFC 8259 (no leading zeros, no trailing commas, no bare control characters), UTF-8, escapes
 * and surrogate pairs, and numbers (an integer beyond 64 bits is an error, a real that
 * overflows is an error). What it accepts and jansson does not is refused here while the
 * values are copied: a member name twice, NUL in a string or name, an integer above INT64_MAX
 * (simdjson types it uint64). Strings and names that could hold an escaped surrogate are
 * copied with jansson's checking constructors, so its UTF-8 rules apply as well (string_value). */
#include "json_fast.h"
#include "json_arena.h"

#include <cstring>
#include <new>

#include <simdjson.h>

static_assert(simdjson::SIMDJSON_PADDING <= EG_JSON_PADDING, "EG_JSON_PADDING below simdjson's padding");

namespace {

/* jansson's JSON_PARSER_MAX_DEPTH: objects and arrays nested deeper fail there too */
constexpr size_t MAX_DEPTH = JSON_PARSER_MAX_DEPTH;
constexpr size_t FIRST_CAPACITY = 4096;

/* One parser per thread: its buffers grow to the largest payload seen and are reused. */
thread_local simdjson::dom::parser parser;

bool has_nul(std::string_view s)
{
	return memchr(s.data(), '\0', s.size()) != nullptr;
}

/* jansson's constructors check UTF-8 again, a tenth of the whole build. simdjson has already
 * validated every byte of the document as UTF-8; the only bytes it makes itself are those of
 * \u escapes, and the only invalid UTF-8 an escape can become is a surrogate (U+D800..DFFF,
 * encoded ED A0..BF xx). So a string without an 0xED byte is valid UTF-8 by construction and
 * skips the second check; one with it takes jansson's checking constructor, which refuses a
 * lone surrogate exactly as json_loadb does. */
bool may_hold_surrogate(std::string_view s)
{
	return memchr(s.data(), 0xed, s.size()) != nullptr;
}

json_t *string_value(std::string_view s)
{
	return may_hold_surrogate(s) ? json_stringn(s.data(), s.size()) : json_stringn_nocheck(s.data(), s.size());
}

int set_member(json_t *o, std::string_view key, json_t *v)
{
	return may_hold_surrogate(key) ? json_object_setn_new(o, key.data(), key.size(), v)
				       : json_object_setn_new_nocheck(o, key.data(), key.size(), v);
}

json_t *value(simdjson::dom::element e);

json_t *object(simdjson::dom::object in)
{
	json_t *o = json_object();
	size_t members = 0;
	if (!o)
		return nullptr;
	for (simdjson::dom::key_value_pair kv : in) {
		/* jansson: "NUL byte in object key not supported" */
		json_t *v = has_nul(kv.key) ? nullptr : value(kv.value);
		/* set_member (json_object_setn_new*) releases v on failure */
		if (!v || set_member(o, kv.key, v) != 0) {
			json_decref(o);
			return nullptr;
		}
		members++;
	}
	/* JSON_REJECT_DUPLICATES: a name seen twice replaced its first value, so the object
	 * holds fewer members than the document named (one hash per member, not two) */
	if (json_object_size(o) != members) {
		json_decref(o);
		return nullptr;
	}
	return o;
}

json_t *array(simdjson::dom::array in)
{
	json_t *a = json_array();
	if (!a)
		return nullptr;
	for (simdjson::dom::element x : in) {
		json_t *v = value(x);
		if (!v || json_array_append_new(a, v) != 0) {
			json_decref(a);
			return nullptr;
		}
	}
	return a;
}

json_t *value(simdjson::dom::element e)
{
	switch (e.type()) {
	case simdjson::dom::element_type::OBJECT:
		return object(e.get_object().value_unsafe());
	case simdjson::dom::element_type::ARRAY:
		return array(e.get_array().value_unsafe());
	case simdjson::dom::element_type::STRING: {
		std::string_view s = e.get_string().value_unsafe();
		/* \u0000: jansson refuses it without JSON_ALLOW_NUL */
		return has_nul(s) ? nullptr : string_value(s);
	}
	case simdjson::dom::element_type::INT64:
		return json_integer(e.get_int64().value_unsafe());
	case simdjson::dom::element_type::UINT64:
		return nullptr; /* above INT64_MAX: jansson's "too big integer" */
	case simdjson::dom::element_type::DOUBLE:
		return json_real(e.get_double().value_unsafe());
	case simdjson::dom::element_type::BOOL:
		return json_boolean(e.get_bool().value_unsafe());
	case simdjson::dom::element_type::NULL_VALUE:
		return json_null();
	}
	return nullptr;
}

/* The tree is built in this thread's arena block (json_arena.h): contiguous, cheap to
 * build and to free when the verdict cache drops it cold. */
struct arena_scope {
	arena_scope() { eg_json_arena_begin(); }
	~arena_scope() { eg_json_arena_end(); }
};

} // namespace

extern "C" json_t *eg_json_object_parse(const char *buf, size_t len)
{
	try {
		if (parser.capacity() == 0 && parser.allocate(FIRST_CAPACITY, MAX_DEPTH) != simdjson::SUCCESS)
			return nullptr;
		simdjson::dom::element root;
		/* false: buf already has EG_JSON_PADDING bytes after len, no copy */
		if (parser.parse(reinterpret_cast<const uint8_t *>(buf), len, false).get(root) != simdjson::SUCCESS ||
		    root.type() != simdjson::dom::element_type::OBJECT)
			return nullptr;
		arena_scope arena;
		return object(root.get_object().value_unsafe());
	} catch (...) { /* std::bad_alloc while growing the parser: refused, like any failure */
		return nullptr;
	}
}
