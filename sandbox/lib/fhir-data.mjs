// Hard-coded FHIR R4 resources served by the sandbox's tiny protected FHIR API.

const patient = (id, family, given, gender, birthDate) => ({
  resourceType: 'Patient',
  id,
  meta: { versionId: '1', lastUpdated: '2024-01-01T00:00:00Z' },
  active: true,
  name: [{ use: 'official', family, given }],
  gender,
  birthDate,
});

export const PATIENTS = [
  patient('123', 'Argonaut', ['Jason'], 'male', '1985-08-01'),
  patient('smart-1', 'Shaw', ['Amy', 'V.'], 'female', '1987-02-20'),
  patient('smart-2', 'Lopez', ['Daniel'], 'male', '1972-11-05'),
];

export const PRACTITIONERS = [
  {
    resourceType: 'Practitioner',
    id: 'smart-Practitioner-1',
    active: true,
    name: [{ use: 'official', family: 'Careful', given: ['Adam'], prefix: ['Dr.'] }],
  },
];

export const ENCOUNTERS = [
  {
    resourceType: 'Encounter',
    id: 'enc-1',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: { reference: 'Patient/123' },
  },
];

const obs = (id, patientId, code, display, value, unit) => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
  code: { coding: [{ system: 'http://loinc.org', code, display }], text: display },
  subject: { reference: `Patient/${patientId}` },
  effectiveDateTime: '2024-01-01T10:00:00Z',
  valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit },
});

export const OBSERVATIONS = [
  obs('obs-1', '123', '8867-4', 'Heart rate', 72, '/min'),
  obs('obs-2', '123', '29463-7', 'Body weight', 80.5, 'kg'),
  obs('obs-3', 'smart-1', '8867-4', 'Heart rate', 64, '/min'),
];

export const RESOURCES = {
  Patient: PATIENTS,
  Practitioner: PRACTITIONERS,
  Encounter: ENCOUNTERS,
  Observation: OBSERVATIONS,
};
