// Reading a manifest the way Kubernetes does. kubectl and calicoctl read YAML 1.1 (go-yaml v2,
// through sigs.k8s.io/yaml), so `route-reflector: yes` is the boolean true there, stored as the
// label "true"; YAML 1.2 would keep "yes" and a selector `route-reflector == 'true'` would no
// longer match. Base-60 numbers are left out: go-yaml never had them, and they would turn an
// unquoted community such as 64512:20 into a number. The `yaml` library's 1.1 exponent form
// has every digit optional, so a name such as `e1` became a float (NaN, then null); go-yaml's
// (resolve.go) needs a digit before the exponent, and so does ours.
import type { Document, ScalarTag } from 'yaml';
import { parseAllDocuments } from 'yaml';

const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)[eE][-+]?[0-9]+$/;

export function readManifest(text: string): Document.Parsed[] {
  const docs = parseAllDocuments(text, {
    version: '1.1',
    customTags: (tags) =>
      tags
        .filter((t) => typeof t === 'string' || t.format !== 'TIME')
        .map((t) =>
          typeof t !== 'string' && t.tag === 'tag:yaml.org,2002:float' && t.format === 'EXP'
            ? ({ ...t, test: FLOAT_EXP } as ScalarTag)
            : t,
        ),
  });
  // parseAllDocuments returns an EmptyStream (an array too) for an empty text.
  return Array.isArray(docs) ? [...docs] : [];
}
