//! What decoding and deciding an AdmissionReview may cost in memory, priced from its JSON before
//! anything is decoded, so that the listener can refuse what would not fit its budget.
//!
//! Why a price and not a byte count: a JSON object of 12 bytes (`{"name":""}`) can become a
//! 3 KiB `Volume`, so a 3 MiB body could decode to gigabytes. Why not one worst-case price per
//! object: a legitimate pod with many environment variables, reviewed on UPDATE with its
//! `managedFields`, has tens of thousands of small objects and would be refused (a pod the API
//! server accepted, refused by mistake). So the price follows the Pod schema, keyed by the field
//! an object sits in, and always errs upwards:
//! - an element of `volumes`, `containers`, `initContainers`, `ephemeralContainers` or a
//!   `*ContainerStatuses` list is priced as that struct; an element of any other list, or any
//!   other object, as the largest other list element of a Pod ([`OTHER_ELEMENT_BYTES`], checked
//!   by a test against every list in the Pod schema);
//! - a key written with escapes (`"vol\u0075mes"`) is priced as the worst case, as the decoder
//!   unescapes it;
//! - only `request.object.metadata.managedFields` and `request.oldObject.metadata.managedFields`
//!   are priced as decoded once and dropped, because [`super::review::decode`] drops them right
//!   after decoding (the decision never reads them); the same field elsewhere (an ephemeral
//!   volume's claim template) is priced like everything else;
//! - under `request.oldObject`, which is only read, every element is counted as decoded once;
//!   elsewhere, every typed element is counted three times (a `Vec` may hold twice its length, and the
//!   patched pod is a clone) plus two `serde_json::Value` renderings (the patch is a diff of the
//!   pod before and after);
//! - JSON nested deeper than serde_json's recursion limit cannot be decoded: it is priced
//!   [`usize::MAX`].

use k8s_openapi::api::core::v1::{Container, ContainerStatus, EphemeralContainer, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

/// A non-empty `serde_json::Map` (a `BTreeMap` leaf of 11 entries of `String` and `Value`).
pub const VALUE_MAP_BYTES: usize = 11 * (size_of::<String>() + size_of::<serde_json::Value>()) + 64;

/// The largest element of a Pod list other than volumes, containers and container statuses
/// (a `VolumeProjection`, 336 bytes, today), rounded up; a test walks the Pod schema to keep it
/// true.
pub const OTHER_ELEMENT_BYTES: usize = 512;

/// Held per typed element: the decoded list (up to twice its length) and the patched clone.
const TYPED_COPIES: usize = 3;
/// `serde_json::Value` renderings of the pod (before and after, for the patch).
const RENDERINGS: usize = 2;

/// An element of `volumes`.
pub const VOLUME_BYTES: usize = TYPED_COPIES * size_of::<Volume>() + RENDERINGS * VALUE_MAP_BYTES;
/// An element of a container list.
pub const CONTAINER_BYTES: usize = TYPED_COPIES
    * max(size_of::<Container>(), size_of::<EphemeralContainer>())
    + RENDERINGS * VALUE_MAP_BYTES;
/// An element of a container status list.
pub const STATUS_BYTES: usize =
    TYPED_COPIES * size_of::<ContainerStatus>() + RENDERINGS * VALUE_MAP_BYTES;
/// Any other non-empty object.
pub const OTHER_BYTES: usize = TYPED_COPIES * OTHER_ELEMENT_BYTES + RENDERINGS * VALUE_MAP_BYTES;
/// Any other empty object (a typed element renders to an empty map, which allocates nothing).
pub const OTHER_EMPTY_BYTES: usize = TYPED_COPIES * OTHER_ELEMENT_BYTES;
/// An entry of the pod's own `managedFields`, decoded once (in a list up to twice its length).
pub const MANAGED_ENTRY_BYTES: usize = 2 * size_of::<ManagedFieldsEntry>() + VALUE_MAP_BYTES;
/// A non-empty map inside such an entry (its `fieldsV1`), decoded once; empty ones allocate
/// nothing.
pub const MANAGED_MAP_BYTES: usize = VALUE_MAP_BYTES;
/// An array (its `Vec` header; elements are priced as members and objects).
pub const ARRAY_BYTES: usize = 64;
/// Bytes per entry of a `BTreeMap` whose entries are `kv` bytes: std's leaves hold 11 entries
/// and, after splits, as few as 5; +10% for the internal nodes.
const fn btree_entry(kv: usize) -> usize {
    (11 * kv + 16) / 5 * 11 / 10 + 1
}
/// An entry of a typed string map (labels, annotations, resource quantities).
pub const MAP_ENTRY_BYTES: usize = btree_entry(2 * size_of::<String>());
/// An entry of a `serde_json::Value` map.
pub const VALUE_ENTRY_BYTES: usize =
    btree_entry(size_of::<String>() + size_of::<serde_json::Value>());
/// One member (a key and value, or an array element): a typed map entry or list element with
/// its copies (the decision clones labels and annotations once more, within the three), and a
/// `Value` map entry or `Vec<Value>` slot in each rendering.
pub const MEMBER_BYTES: usize = TYPED_COPIES * MAP_ENTRY_BYTES + RENDERINGS * VALUE_ENTRY_BYTES;
/// An object under `request.oldObject`, decoded once (a typed element in a list up to twice its
/// length, or a `Value` map if the typed decoding failed and the review is read generically) and
/// never cloned or rendered.
const fn once(typed: usize) -> usize {
    max(2 * typed, VALUE_MAP_BYTES)
}
/// A member under `request.oldObject`.
pub const ONCE_MEMBER_BYTES: usize = max(MAP_ENTRY_BYTES, VALUE_ENTRY_BYTES);
/// One member in the pod's own `managedFields`, decoded once (a `Value` map entry, or a string
/// of an entry in a list up to twice its length).
pub const MANAGED_MEMBER_BYTES: usize = VALUE_ENTRY_BYTES + 2 * size_of::<String>();
/// Per byte of body: strings copied into the typed review, its clone and the two renderings.
pub const BYTE_COST: usize = 4;

/// serde_json refuses JSON nested deeper than this (its recursion limit of 128 counts the
/// outermost container as the first step).
pub const MAX_DEPTH: usize = 127;

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// How the elements (of an array) or the object itself are priced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Volume,
    Container,
    Status,
    Other,
    /// An entry of the pod's own `managedFields`.
    ManagedEntry,
    /// Anything inside such an entry.
    Managed,
}

impl Class {
    fn managed(self) -> bool {
        matches!(self, Class::ManagedEntry | Class::Managed)
    }
}

/// Where an object sits on the way to the pod's `managedFields`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Review,
    Request,
    Pod,
    Metadata,
    Elsewhere,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    is_array: bool,
    /// Under `request.oldObject`: decoded once, never cloned or rendered.
    once: bool,
    class: Class,
    path: Path,
    nonempty: bool,
}

/// The price of decoding and deciding `json` (see the module documentation), saturating.
pub fn decode_cost(json: &[u8]) -> usize {
    let mut stack: Vec<Frame> = Vec::with_capacity(MAX_DEPTH + 1);
    let mut cost = json.len().saturating_mul(BYTE_COST);
    // The most recent complete string: (start, end) of its raw bytes, and whether it had escapes.
    let mut last_string = (0, 0, false);
    let (mut in_string, mut escaped, mut string_start, mut had_escape) = (false, false, 0, false);
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => (escaped, had_escape) = (true, true),
                b'"' => {
                    in_string = false;
                    last_string = (string_start, i, had_escape);
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                (in_string, string_start, had_escape) = (true, i + 1, false);
                mark_nonempty(&mut stack);
            }
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return usize::MAX;
                }
                mark_nonempty(&mut stack);
                let key = &json[last_string.0..last_string.1];
                let frame = open(stack.last(), b == b'[', key, last_string.2);
                stack.push(frame);
            }
            b'}' | b']' => {
                if let Some(frame) = stack.pop() {
                    cost = cost.saturating_add(close(&frame));
                }
            }
            b',' | b':' => {
                let member = match stack.last() {
                    Some(f) if f.class.managed() => MANAGED_MEMBER_BYTES,
                    Some(f) if f.once => ONCE_MEMBER_BYTES,
                    _ => MEMBER_BYTES,
                };
                cost = cost.saturating_add(member);
            }
            b' ' | b'\n' | b'\r' | b'\t' => {}
            // A number, `true`, `false` or `null`.
            _ => mark_nonempty(&mut stack),
        }
    }
    // Containers left open (invalid JSON, refused by the decoder) are priced as if closed.
    stack.iter().fold(cost, |c, f| c.saturating_add(close(f)))
}

fn mark_nonempty(stack: &mut [Frame]) {
    if let Some(top) = stack.last_mut() {
        top.nonempty = true;
    }
}

/// The frame of a container opened inside `parent`, under `key` when `parent` is an object.
fn open(parent: Option<&Frame>, is_array: bool, key: &[u8], key_escaped: bool) -> Frame {
    let Some(parent) = parent else {
        let path = if is_array {
            Path::Elsewhere
        } else {
            Path::Review
        };
        return Frame {
            is_array,
            once: false,
            class: Class::Other,
            path,
            nonempty: false,
        };
    };
    let once = parent.once || (parent.path == Path::Request && key == b"oldObject" && !key_escaped);
    let frame = |class, path| Frame {
        is_array,
        once,
        class,
        path,
        nonempty: false,
    };
    if parent.is_array {
        // An element (or, in invalid JSON, a nested list): priced as the list's elements.
        return frame(parent.class, Path::Elsewhere);
    }
    if parent.class.managed() {
        return frame(Class::Managed, Path::Elsewhere);
    }
    if key_escaped {
        // The decoder unescapes keys: this may be any field, so assume the most expensive.
        return frame(Class::Volume, Path::Elsewhere);
    }
    if is_array {
        let class = match key {
            b"managedFields" if parent.path == Path::Metadata => Class::ManagedEntry,
            b"volumes" => Class::Volume,
            b"containers" | b"initContainers" | b"ephemeralContainers" => Class::Container,
            b"containerStatuses" | b"initContainerStatuses" | b"ephemeralContainerStatuses" => {
                Class::Status
            }
            _ => Class::Other,
        };
        return frame(class, Path::Elsewhere);
    }
    let path = match (parent.path, key) {
        (Path::Review, b"request") => Path::Request,
        (Path::Request, b"object" | b"oldObject") => Path::Pod,
        (Path::Pod, b"metadata") => Path::Metadata,
        _ => Path::Elsewhere,
    };
    frame(Class::Other, path)
}

/// The price of a container, known once it closes (an empty one may cost less).
fn close(frame: &Frame) -> usize {
    if frame.is_array {
        return ARRAY_BYTES;
    }
    if frame.once && !frame.class.managed() {
        return match (frame.class, frame.nonempty) {
            (Class::Volume, _) => once(size_of::<Volume>()),
            (Class::Container, _) => {
                once(max(size_of::<Container>(), size_of::<EphemeralContainer>()))
            }
            (Class::Status, _) => once(size_of::<ContainerStatus>()),
            (_, true) => once(OTHER_ELEMENT_BYTES),
            (_, false) => 2 * OTHER_ELEMENT_BYTES,
        };
    }
    match (frame.class, frame.nonempty) {
        (Class::Volume, _) => VOLUME_BYTES,
        (Class::Container, _) => CONTAINER_BYTES,
        (Class::Status, _) => STATUS_BYTES,
        (Class::Other, true) => OTHER_BYTES,
        (Class::Other, false) => OTHER_EMPTY_BYTES,
        (Class::ManagedEntry, _) => MANAGED_ENTRY_BYTES,
        (Class::Managed, true) => MANAGED_MAP_BYTES,
        (Class::Managed, false) => 0,
    }
}

#[cfg(test)]
mod tests;
