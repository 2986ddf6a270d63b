//! The forms of `inputs:` and `outputs:` a block may write: druppie's
//! mappings (`inputs: {port: {type: integer}}`, `outputs: {url: "…"}`)
//! and the lists of names existing Druppie catalogs use
//! (`inputs: ["filename"]`, `outputs: ["url"]`).
//!
//! A listed input is of type `any` and not required; a listed output is
//! documentation only: it has no expression, so no other block can wire
//! it.

use std::fmt;
use std::ops::Deref;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::model::InputDecl;
use super::yaml::{SpannedMap, Str};

/// Reads `inputs:` as a mapping of declarations or a list of names.
///
/// # Errors
/// Neither form, or a malformed declaration.
pub fn inputs<'de, D: Deserializer<'de>>(d: D) -> Result<SpannedMap<InputDecl>, D::Error> {
    struct InputsVisitor;
    impl<'de> Visitor<'de> for InputsVisitor {
        type Value = SpannedMap<InputDecl>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of input declarations or a list of input names")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(entry) = map.next_entry::<Str, InputDecl>()? {
                entries.push(entry);
            }
            Ok(SpannedMap(entries))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries = Vec::new();
            while let Some(name) = seq.next_element::<Str>()? {
                entries.push((name, InputDecl::default()));
            }
            Ok(SpannedMap(entries))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(SpannedMap::default())
        }
    }
    d.deserialize_any(InputsVisitor)
}

/// A block's outputs: expressions other blocks can wire, and names
/// listed for documentation only. Reads as [`Outputs::wired`].
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Output name -> template expression (`{{ plan }}-{{ component }}-app`).
    pub wired: SpannedMap<Str>,
    /// Outputs named in the list form: documented, not wired.
    pub listed: Vec<Str>,
}

impl Outputs {
    /// Every output name, wired ones first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.wired
            .keys()
            .chain(self.listed.iter().map(|s| s.value.as_str()))
    }
}

impl Deref for Outputs {
    type Target = SpannedMap<Str>;

    fn deref(&self) -> &SpannedMap<Str> {
        &self.wired
    }
}

impl<'de> Deserialize<'de> for Outputs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OutputsVisitor;
        impl<'de> Visitor<'de> for OutputsVisitor {
            type Value = Outputs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of output expressions or a list of output names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outputs, A::Error> {
                let mut wired = Vec::new();
                while let Some(entry) = map.next_entry::<Str, Str>()? {
                    wired.push(entry);
                }
                Ok(Outputs {
                    wired: SpannedMap(wired),
                    listed: Vec::new(),
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Outputs, A::Error> {
                let mut listed = Vec::new();
                while let Some(name) = seq.next_element::<Str>()? {
                    listed.push(name);
                }
                Ok(Outputs {
                    wired: SpannedMap::default(),
                    listed,
                })
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Outputs, E> {
                Ok(Outputs::default())
            }
        }
        d.deserialize_any(OutputsVisitor)
    }
}

impl Serialize for Outputs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wired.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::model::{BlockMeta, InputType};
    use crate::spec::source::SourceFile;

    const HEAD: &str = "id: x\nname: X\ntype: service\nversion: 1.0.0\ndescription: d\n";

    fn both(yaml: &str) -> [BlockMeta; 2] {
        let text = format!("{HEAD}{yaml}");
        let file = SourceFile {
            path: "b.yaml".into(),
            disk_path: "b.yaml".into(),
            text: text.clone(),
            yaml_line_offset: 0,
        };
        let fast = crate::spec::yaml::parse::<BlockMeta>(&file, &text).expect("parses");
        let full: BlockMeta =
            serde_saphyr::from_str_with_options(&text, crate::spec::yaml::options())
                .expect("parses");
        [fast, full]
    }

    #[test]
    fn listed_inputs_are_optional_and_of_any_type() {
        for meta in both("inputs: [\"filename\", size]\noutputs: [\"url\"]\n") {
            let names: Vec<&str> = meta.inputs.keys().collect();
            assert_eq!(names, ["filename", "size"]);
            let decl = meta.inputs.get("filename").expect("declared");
            assert_eq!(decl.kind, InputType::Any);
            assert!(!decl.required && decl.default.is_none());
            assert_eq!(meta.inputs.0[0].0.referenced.line(), 6);
            assert!(meta.outputs.is_empty(), "listed outputs are not wired");
            assert_eq!(meta.outputs.names().collect::<Vec<_>>(), ["url"]);
        }
    }

    #[test]
    fn mapped_inputs_and_outputs_read_as_before() {
        for meta in
            both("inputs:\n  port: {type: integer, default: 80}\noutputs:\n  url: \"{{ plan }}\"\n")
        {
            assert_eq!(
                meta.inputs.get("port").expect("declared").kind,
                InputType::Integer
            );
            assert_eq!(meta.outputs.get("url").expect("wired").value, "{{ plan }}");
        }
        for meta in both("inputs:\noutputs:\n") {
            assert!(meta.inputs.is_empty() && meta.outputs.names().next().is_none());
        }
    }

    #[test]
    fn a_scalar_is_neither_form() {
        let text = format!("{HEAD}inputs: filename\n");
        let file = SourceFile {
            path: "b.yaml".into(),
            disk_path: "b.yaml".into(),
            text: text.clone(),
            yaml_line_offset: 0,
        };
        let err = crate::spec::yaml::parse::<BlockMeta>(&file, &text).expect_err("refused");
        assert!(
            err.message.contains("list of input names"),
            "{}",
            err.message
        );
    }
}
