//! Introspection beside the depth limit: the standard introspection query of GraphQL tools
//! (GraphiQL, codegen, `graphql-core`, `gql`) nests `ofType` seven levels and more, deeper
//! than any operation of the schema needs, so the limit that guards operations would refuse
//! it.
//!
//! What makes a deep query expensive is lists inside lists: `types { fields { type { fields
//! …` grows with each level. `ofType` is a single value, and its depth costs nothing. So a
//! query that asks for nothing but introspection runs on a schema with a generous depth, as
//! long as it nests at most [`MAX_LISTS`] lists (the standard query nests three: types,
//! fields, args), and with only introspection allowed to resolve. Everything else runs on the
//! operations' schema, which answers no introspection: introspection beside other fields, or
//! nesting more lists, is refused with the reason.

use std::cell::Cell;
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
            .limit_complexity(1000)
            .extension(super::LiveCredentials)
            .finish()
    });
    &SCHEMA
}

/// What a request asks of introspection.
#[derive(Debug, PartialEq, Eq)]
pub enum Introspection {
    /// Nothing: it runs as any operation (on a schema that answers no introspection).
    None,
    /// Introspection alone, within bounds: it runs on [`schema`].
    Alone,
    /// Introspection it may not have, and why.
    Refused(String),
}

/// Fields and fragments a check visits at most: fragments spread in fragments can make a
/// small query's tree huge.
const BUDGET: usize = 10_000;

/// What `req`'s operation asks of introspection (`__schema`, `__type`).
pub fn classify(req: &async_graphql::Request) -> Introspection {
    // Cheap first: most requests are not introspection (`__type` also finds `__typename`).
    if !req.query.contains("__schema") && !req.query.contains("__type") {
        return Introspection::None;
    }
    // A request that does not parse or names no operation is answered so by the schema.
    let Ok(doc) = parse(&req.query) else {
        return Introspection::None;
    };
    let op = match (&doc.operations, req.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        // A document of one named operation runs it without being told its name.
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    let Some(op) = op.filter(|op| op.node.ty == OperationType::Query) else {
        return Introspection::None;
    };
    let walk = Walk { doc: Some(&doc), budget: Cell::new(BUDGET), ..Walk::default() };
    walk.top(&op.node.selection_set.node, &mut HashSet::new());
    if !walk.introspective.get() {
        Introspection::None
    } else if walk.budget.get() == 0 {
        Introspection::Refused("this introspection query is too large to run".into())
    } else if walk.other.get() {
        Introspection::Refused("ask for introspection (__schema, __type) alone, beside no other field".into())
    } else if walk.deep.get() {
        Introspection::Refused(format!("introspection may nest at most {MAX_LISTS} lists (types {{ fields {{ args …)"))
    } else {
        Introspection::Alone
    }
}

#[derive(Default)]
struct Walk<'a> {
    doc: Option<&'a ExecutableDocument>,
    /// Visits left.
    budget: Cell<usize>,
    /// The operation asks for `__schema` or `__type`.
    introspective: Cell<bool>,
    /// … and for other fields beside it.
    other: Cell<bool>,
    /// … nesting more lists than allowed.
    deep: Cell<bool>,
}

impl<'a> Walk<'a> {
    /// Counts a visit: false once the budget is spent.
    fn visit(&self) -> bool {
        let left = self.budget.get();
        self.budget.set(left.saturating_sub(1));
        left > 0
    }

    /// The operation's top level: which fields it asks for, and how deep introspection goes.
    fn top(&self, set: &'a SelectionSet, seen: &mut HashSet<&'a str>) {
        for item in &set.items {
            if !self.visit() {
                return;
            }
            match &item.node {
                Selection::Field(f) => match f.node.name.node.as_str() {
                    "__schema" | "__type" => {
                        self.introspective.set(true);
                        if !self.lists(&f.node.selection_set.node, 0, seen) {
                            self.deep.set(true);
                        }
                    }
                    "__typename" => {}
                    _ => self.other.set(true),
                },
                Selection::InlineFragment(f) => self.top(&f.node.selection_set.node, seen),
                Selection::FragmentSpread(s) => {
                    self.spread(s.node.fragment_name.node.as_str(), seen, |w, set, seen| {
                        w.top(set, seen);
                        true
                    });
                }
            }
        }
    }

    /// No path below nests more than [`MAX_LISTS`] lists (`depth` of them are above), within
    /// the budget.
    fn lists(&self, set: &'a SelectionSet, depth: usize, seen: &mut HashSet<&'a str>) -> bool {
        set.items.iter().all(|item| {
            self.visit()
                && match &item.node {
                    Selection::Field(f) => {
                        let depth = depth + usize::from(LISTS.contains(&f.node.name.node.as_str()));
                        depth <= MAX_LISTS && self.lists(&f.node.selection_set.node, depth, seen)
                    }
                    Selection::InlineFragment(f) => self.lists(&f.node.selection_set.node, depth, seen),
                    Selection::FragmentSpread(s) => {
                        self.spread(s.node.fragment_name.node.as_str(), seen, |w, set, seen| w.lists(set, depth, seen))
                    }
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
        let Some(fragment) = self.doc.and_then(|doc| doc.fragments.get(name)) else {
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
        let refused = |q: &str| matches!(classify(&request(q)), Introspection::Refused(_));
        assert_eq!(classify(&request(STANDARD)), Introspection::Alone);
        let by_name = "{ __type(name: \"Query\") { fields { name type { name ofType { name } } } } }";
        assert_eq!(classify(&request(by_name)), Introspection::Alone);
        assert_eq!(classify(&request("{ me { id __typename } }")), Introspection::None);
        assert_eq!(classify(&request("mutation { __typename }")), Introspection::None);
        assert!(refused("{ __schema { types { name } } me { id } }"), "a real field beside it");
        let exploding = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
        assert!(refused(exploding), "four lists deep");
        let hidden = "query { ...A } fragment A on Query { __schema { types { ...B } } }
            fragment B on __Type { fields { type { fields { type { fields { name } } } } } }";
        assert!(refused(hidden), "the same, through fragments");
        let cycle = "{ __schema { types { ...A } } } fragment A on __Type { ofType { ...A } }";
        assert!(refused(cycle));
        // Fragments that each spread the next twice: a tree of 2^40 visits from a short query.
        let mut doubling = String::from("{ __schema { types { ...F0 } } }");
        for i in 0..40 {
            doubling.push_str(&format!(
                " fragment F{i} on __Type {{ ofType {{ ...F{} }} ofType2: ofType {{ ...F{} }} }}",
                i + 1,
                i + 1
            ));
        }
        doubling.push_str(" fragment F40 on __Type { name }");
        assert_eq!(
            classify(&request(&doubling)),
            Introspection::Refused("this introspection query is too large to run".into())
        );
    }

    #[tokio::test]
    async fn the_standard_query_runs_and_a_normal_field_does_not() {
        let resp = schema().execute(request(STANDARD).only_introspection()).await;
        assert!(resp.errors.is_empty(), "{:?}", resp.errors);
        let types = resp.data.into_json().unwrap()["__schema"]["types"].as_array().map(Vec::len).unwrap_or(0);
        assert!(types > 20, "{types} types");
        // The same query is refused by the operations' depth limit, and the operations' schema
        // answers no introspection at all.
        let refused = super::super::schema().execute(request(STANDARD)).await;
        assert!(refused.errors.iter().any(|e| e.message.contains("nested too deep")), "{:?}", refused.errors);
        let shallow = super::super::schema().execute(request("{ __schema { queryType { name } } }")).await;
        assert_eq!(shallow.data.into_json().unwrap()["__schema"], serde_json::Value::Null);
        // Here, nothing but introspection resolves.
        let me = schema().execute(request("{ me { id } }").only_introspection()).await;
        assert_eq!(me.data.into_json().unwrap()["me"], serde_json::Value::Null);
    }
}
