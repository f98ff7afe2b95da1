//! Scope builders ([`resource_scope`], [`launch_scope`]) and constants ([`OPENID`], …).
//! Built scopes are always v2, canonical (`c r u d s` order) and valid (strict).

use super::{
    Interaction, LaunchScope, Permissions, ResourceScope, ResourceType, Scope, ScopeContext,
    scope_error,
};
use crate::error::{Error, ScopeErrorKind};

/// `openid` (OIDC sign-in; request it with `fhirUser` to learn who the user is).
pub const OPENID: Scope = Scope::OpenId;
/// `fhirUser` (the `fhirUser` claim; needs `openid`).
pub const FHIR_USER: Scope = Scope::FhirUser;
/// `profile` (standard OIDC scope).
pub const PROFILE: Scope = Scope::Profile;
/// `offline_access` (asks for a refresh token).
pub const OFFLINE_ACCESS: Scope = Scope::OfflineAccess;
/// `online_access` (asks for a refresh token valid while the user is online; experimental in
/// 2.2.0).
pub const ONLINE_ACCESS: Scope = Scope::OnlineAccess;
/// Bare `launch` (EHR launch: asks for the context the EHR established).
pub const LAUNCH: Scope = Scope::Launch(LaunchScope::EHR);

/// Anything [`resource_scope`] accepts as permissions.
pub trait IntoPermissions {
    /// Convert to a permission set.
    ///
    /// # Errors
    /// [`Error::Scope`] for text that is neither `*` nor letters from `cruds`.
    fn into_permissions(self) -> Result<Permissions, Error>;
}

impl IntoPermissions for Permissions {
    fn into_permissions(self) -> Result<Permissions, Error> {
        Ok(self)
    }
}

impl IntoPermissions for Interaction {
    fn into_permissions(self) -> Result<Permissions, Error> {
        Ok(Permissions::only(self))
    }
}

/// Letters in any order (`"sr"` builds `.rs`; it is a set), or `"*"` for all of `cruds`.
/// Letters outside `cruds` and repeated letters are errors.
impl IntoPermissions for &str {
    fn into_permissions(self) -> Result<Permissions, Error> {
        if self == "*" {
            return Ok(Permissions::ALL);
        }
        let mut p = Permissions::NONE;
        for (i, c) in self.char_indices() {
            let Some(inter) = Interaction::from_letter(c) else {
                return Err(scope_error(
                    self,
                    ScopeErrorKind::UnknownPermission,
                    i,
                    format!("unknown permission `{c}`: expected c, r, u, d, s or `*`"),
                ));
            };
            if p.contains(inter) {
                return Err(scope_error(
                    self,
                    ScopeErrorKind::RepeatedPermission,
                    i,
                    format!("permission `{c}` repeated"),
                ));
            }
            p.insert(inter);
        }
        Ok(p)
    }
}

impl IntoPermissions for &[Interaction] {
    fn into_permissions(self) -> Result<Permissions, Error> {
        Ok(self.iter().copied().collect())
    }
}

impl<const N: usize> IntoPermissions for [Interaction; N] {
    fn into_permissions(self) -> Result<Permissions, Error> {
        Ok(self.into_iter().collect())
    }
}

impl IntoPermissions for Vec<Interaction> {
    fn into_permissions(self) -> Result<Permissions, Error> {
        Ok(self.into_iter().collect())
    }
}

/// Build a v2 resource scope.
///
/// `resource_type` is a FHIR type name or `"*"`; `perms` is letters (`"rs"`), `"*"` (all of
/// `cruds`), a [`Permissions`] set or a list of [`Interaction`]s. The result is canonical:
/// `{search, read}` on `patient`/`Observation` gives `patient/Observation.rs`.
///
/// # Errors
/// [`Error::Scope`] for an empty permission set (the IG's grammar allows `Type.` but no
/// example uses it, and servers may reject it), unknown or repeated
/// letters, or an invalid type name.
pub fn resource_scope(
    context: ScopeContext,
    resource_type: &str,
    perms: impl IntoPermissions,
) -> Result<Scope, Error> {
    let t = if resource_type == "*" {
        ResourceType::Any
    } else {
        ResourceType::Named(resource_type.to_owned())
    };
    Ok(Scope::Resource(ResourceScope::new(
        context,
        t,
        perms.into_permissions()?,
    )?))
}

/// Build `launch/<context_type>`, e.g. `patient`, `encounter`, `imagingstudy` (the IG
/// writes types lowercase; the case given is kept).
///
/// # Errors
/// [`Error::Scope`] if `context_type` is empty or not ASCII letters/digits.
pub fn launch_scope(context_type: &str) -> Result<Scope, Error> {
    Ok(Scope::Launch(LaunchScope::context(context_type)?))
}
