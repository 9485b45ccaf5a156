"""Customer information (2.0.1 N09 / N10): asking a charger to report and/or clear what it holds about one
customer, and keeping the reports for operators until an admin deletes them (they are personal data).

Owns the `customer_information_requests` table (one row per CustomerInformation: whom it named, the charger's
answer), the NotifyCustomerInformation handler (parts kept by `ampgate.reports`, numbered by seqNo), and the
service that sends the request through the Commander and waits for the report. `state` holds the rules. Events
carry request ids and sizes only. The HTTP routes live in `ampgate.api.customer_information`.
"""

from ampgate.customer.handlers import CustomerInformationHandlers
from ampgate.customer.repository import CustomerInformationRepository, CustomerInformationRow
from ampgate.customer.service import CustomerInformation, CustomerInformationService
from ampgate.customer.state import CertificateHash, Customer, CustomerRequest, IdToken

__all__ = [
    "CertificateHash",
    "Customer",
    "CustomerInformation",
    "CustomerInformationHandlers",
    "CustomerInformationRepository",
    "CustomerInformationRow",
    "CustomerInformationService",
    "CustomerRequest",
    "IdToken",
]
