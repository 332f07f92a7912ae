//! Introspection beside the depth limit: the standard introspection query of GraphQL tools
//! (GraphiQL, codegen, `graphql-core`, `gql`) nests `ofType` seven levels and more, deeper
//! than any operation of the schema needs, so the limit that guards operations would refuse
//! it.
//!
//! What makes a deep query expensive is lists inside lists: `types { fields { type { fields
//! …` grows with each level. `ofType` is a single value, and its depth costs nothing. So a
//! query that asks for nothing but introspection runs on a schema with a generous depth, as
//! long as it nests at most [`MAX_LISTS`] lists (the standard query nests three: types,
//! fields, args), and with only introspection allowed to resolve.

use std::collections::HashSet;

use async_graphql::parser::parse_query as parse;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};

use super::{Mutation, Query, Schema, telemetry};

/// Lists nested in one another, at most.
pub const MAX_LISTS: usize = 3;

/// Introspection's fields that are lists.
const LISTS: [&str; 8] =
    ["types", "fields", "args", "inputFields", "interfaces", "possibleTypes", "enumValues", "directives"];

/// The schema introspection-only requests run on.
pub fn schema() -> &'static Schema {
    static SCHEMA: std::sync::LazyLock<Schema> = std::sync::LazyLock::new(|| {
        async_graphql::Schema::build(Query::default(), Mutation::default(), telemetry::Subscription)
            .limit_depth(32)
            .limit_complexity(2000)
            .finish()
    });
    &SCHEMA
}

/// Whether `req`'s operation asks for introspection only (`__schema`, `__type`,
/// `__typename`), nesting no more than [`MAX_LISTS`] lists.
pub fn only(req: &async_graphql::Request) -> bool {
    // Cheap first: most requests are not introspection.
    if !req.query.contains("__schema") && !req.query.contains("__type") {
        return false;
    }
    let Ok(doc) = parse(&req.query) else {
        return false;
    };
    let op = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => match ops.get(name) {
            Some(op) => op,
            None => return false,
        },
        // A document of one named operation runs it without being told its name.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => match ops.values().next() {
            Some(op) => op,
            None => return false,
        },
        (DocumentOperations::Multiple(_), None) => return false,
    };
    if op.node.ty != OperationType::Query {
        return false;
    }
    let walk = Walk { doc: &doc };
    walk.top(&op.node.selection_set.node, &mut HashSet::new())
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
}

impl<'a> Walk<'a> {
    /// Every field of the operation's top level is introspection, and each within bounds.
    fn top(&self, set: &'a SelectionSet, seen: &mut HashSet<&'a str>) -> bool {
        set.items.iter().all(|item| match &item.node {
            Selection::Field(f) => {
                let name = f.node.name.node.as_str();
                matches!(name, "__schema" | "__type" | "__typename")
                    && self.lists(&f.node.selection_set.node, 0, &mut HashSet::new())
            }
            Selection::InlineFragment(f) => self.top(&f.node.selection_set.node, seen),
            Selection::FragmentSpread(s) => {
                self.spread(s.node.fragment_name.node.as_str(), seen, |w, set, seen| w.top(set, seen))
            }
        })
    }

    /// No path below nests more than [`MAX_LISTS`] lists (`depth` of them are above).
    fn lists(&self, set: &'a SelectionSet, depth: usize, seen: &mut HashSet<&'a str>) -> bool {
        set.items.iter().all(|item| match &item.node {
            Selection::Field(f) => {
                let depth = depth + usize::from(LISTS.contains(&f.node.name.node.as_str()));
                depth <= MAX_LISTS && self.lists(&f.node.selection_set.node, depth, seen)
            }
            Selection::InlineFragment(f) => self.lists(&f.node.selection_set.node, depth, seen),
            Selection::FragmentSpread(s) => {
                self.spread(s.node.fragment_name.node.as_str(), seen, |w, set, seen| w.lists(set, depth, seen))
            }
        })
    }

    /// Follows a fragment spread; a fragment met again on the same path (a cycle, which
    /// validation refuses anyway) or unknown answers no.
    fn spread(
        &self,
        name: &'a str,
        seen: &mut HashSet<&'a str>,
        then: impl FnOnce(&Self, &'a SelectionSet, &mut HashSet<&'a str>) -> bool,
    ) -> bool {
        let Some(fragment) = self.doc.fragments.get(name) else {
            return false;
        };
        if !seen.insert(name) {
            return false;
        }
        let ok = then(self, &fragment.node.selection_set.node, seen);
        seen.remove(name);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `graphql-core`'s (and graphql-js's) standard introspection query, as GraphQL tools send it.
    pub const STANDARD: &str = r"
    query IntrospectionQuery {
      __schema {
        queryType { name } mutationType { name } subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) {
        name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
      }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
    }";

    fn request(query: &str) -> async_graphql::Request {
        async_graphql::Request::new(query)
    }

    #[test]
    fn the_standard_query_is_introspection_and_an_exploding_one_is_not() {
        assert!(only(&request(STANDARD)));
        assert!(only(&request("{ __type(name: \"Query\") { fields { name type { name ofType { name } } } } }")));
        assert!(!only(&request("{ __schema { types { name } } me { id } }")), "a real field beside it");
        assert!(!only(&request("mutation { __typename }")));
        let exploding = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert!(!only(&request(exploding)), "four lists deep");
        let hidden = "query { ...A } fragment A on Query { __schema { types { ...B } } }
            fragment B on __Type { fields { type { fields { type { fields { name } } } } } }";
        assert!(!only(&request(hidden)), "the same, through fragments");
        let cycle = "{ __schema { types { ...A } } } fragment A on __Type { ofType { ...A } }";
        assert!(!only(&request(cycle)));
    }

    #[tokio::test]
    async fn the_standard_query_runs_and_a_normal_field_does_not() {
        let resp = schema().execute(request(STANDARD).only_introspection()).await;
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
        let types = resp.data.into_json().unwrap()["__schema"]["types"].as_array().map(Vec::len).unwrap_or(0);
        assert!(types > 20, "{types} types");
        // The same query is refused by the operations' depth limit.
        let refused = super::super::schema().execute(request(STANDARD)).await;
        assert!(refused.errors.iter().any(|e| e.message.contains("nested too deep")), "{:?}", refused.errors);
    }
}
