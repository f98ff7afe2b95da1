//! Permissions of a resource scope: [`Interaction`], [`Permissions`] and the
//! [`ScopeSyntax`] they are written in.

use std::fmt;

/// One FHIR interaction class named by a v2 permission letter (SMART App Launch §"Scopes and Launch
/// Context", "Scopes for requesting FHIR Resources").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interaction {
    /// `c`: type-level create.
    Create,
    /// `r`: instance read, vread, instance history.
    Read,
    /// `u`: update and patch (including update-as-create).
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: type search, type history, system search, system history.
    Search,
}

impl Interaction {
    /// All five, in canonical letter order `c r u d s`.
    pub const ALL: [Interaction; 5] = [
        Self::Create,
        Self::Read,
        Self::Update,
        Self::Delete,
        Self::Search,
    ];

    /// The v2 permission letter: `c`, `r`, `u`, `d` or `s`.
    pub const fn letter(self) -> char {
        match self {
            Self::Create => 'c',
            Self::Read => 'r',
            Self::Update => 'u',
            Self::Delete => 'd',
            Self::Search => 's',
        }
    }

    /// The interaction for a permission letter, `None` for anything but `c r u d s`.
    pub const fn from_letter(c: char) -> Option<Self> {
        match c {
            'c' => Some(Self::Create),
            'r' => Some(Self::Read),
            'u' => Some(Self::Update),
            'd' => Some(Self::Delete),
            's' => Some(Self::Search),
            _ => None,
        }
    }

    /// A lowercase English verb: `create`, `read`, `update`, `delete`, `search`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Search => "search",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Read => 2,
            Self::Update => 4,
            Self::Delete => 8,
            Self::Search => 16,
        }
    }
}

impl fmt::Display for Interaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Interaction`]s (the `cruds` letters). `Display` writes the letters in
/// canonical order `c r u d s`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Permissions(u8);

impl Permissions {
    /// No interaction (invalid in a scope; the builder rejects it).
    pub const NONE: Permissions = Permissions(0);
    /// All five interactions: `cruds` (v1 `.*`).
    pub const ALL: Permissions = Permissions(31);
    /// `rs`, the v2 equivalent of v1 `.read`.
    pub const READ_SEARCH: Permissions = Permissions(2 | 16);
    /// `cud`, the v2 equivalent of v1 `.write`.
    pub const CREATE_UPDATE_DELETE: Permissions = Permissions(1 | 4 | 8);

    /// The empty set.
    pub const fn empty() -> Self {
        Self::NONE
    }

    /// A set holding exactly `i`.
    pub const fn only(i: Interaction) -> Self {
        Self(i.bit())
    }

    /// Whether `i` is in the set.
    pub const fn contains(self, i: Interaction) -> bool {
        self.0 & i.bit() != 0
    }

    /// Add `i`.
    pub fn insert(&mut self, i: Interaction) {
        self.0 |= i.bit();
    }

    /// Remove `i`.
    pub fn remove(&mut self, i: Interaction) {
        self.0 &= !i.bit();
    }

    /// Union of both sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Intersection of both sets.
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Interactions in `self` but not in `other`.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether every interaction of `self` is in `other`.
    pub const fn is_subset(self, other: Self) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of interactions (0..=5).
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The interactions in canonical order `c r u d s`.
    pub fn iter(self) -> impl Iterator<Item = Interaction> {
        Interaction::ALL
            .into_iter()
            .filter(move |i| self.contains(*i))
    }

    /// The v1 keyword with exactly this meaning (`read` = `rs`, `write` = `cud`, `*` =
    /// `cruds`), if any.
    pub const fn v1_keyword(self) -> Option<&'static str> {
        match self.0 {
            18 => Some("read"),
            13 => Some("write"),
            31 => Some("*"),
            _ => None,
        }
    }
}

impl FromIterator<Interaction> for Permissions {
    fn from_iter<T: IntoIterator<Item = Interaction>>(iter: T) -> Self {
        let mut p = Self::NONE;
        for i in iter {
            p.insert(i);
        }
        p
    }
}

impl From<Interaction> for Permissions {
    fn from(i: Interaction) -> Self {
        Self::only(i)
    }
}

impl std::ops::BitOr for Permissions {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in self.iter() {
            fmt::Write::write_char(f, i.letter())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permissions(\"{self}\")")
    }
}

/// Which permission syntax a resource scope uses (SMART App Launch §"Scopes and Launch Context",
/// "FHIR Resource Scope Syntax").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeSyntax {
    /// SMART v1: `.read`, `.write`, `.*` (capability `permission-v1`).
    V1,
    /// SMART v2: `.cruds` letters, optional granular `?param=value` (capability
    /// `permission-v2`).
    V2,
}

impl ScopeSyntax {
    /// The syntax to request from a server advertising `capabilities` (the discovery
    /// document's `capabilities` array, SMART App Launch §"Conformance", "Capabilities"):
    ///
    /// * `permission-v2` present → [`ScopeSyntax::V2`];
    /// * otherwise → [`ScopeSyntax::V1`]. That covers servers advertising only
    ///   `permission-v1` and pre-2.0 servers that advertise neither (both strings are new in
    ///   2.0.0, so a server without them speaks STU1 scopes).
    pub fn for_capabilities<S: AsRef<str>>(capabilities: &[S]) -> Self {
        if capabilities.iter().any(|c| c.as_ref() == "permission-v2") {
            Self::V2
        } else {
            Self::V1
        }
    }
}
